"""Work items as the CLI (and later the console) read them: a queue with the filters a runbook
needs, and one item with everything behind it.

``find_items`` narrows in the database with :class:`WorkItemFilter` and applies the two
conditions it cannot express on the rows it pages through: "older than" (items come oldest
first, so the first too-young item ends the walk) and "error contains" (the filter's text search
also looks at payer, trace and claim numbers, which would surprise a script asking about error
messages). ``item_detail`` re-reads the raw segments from the stored file bytes, with people's
names and ids masked (``[PHI]``), because the payer's own text is what an analyst argues with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.engine.audit_export import AuditFilter, audit_rows, iso
from claimsync_console.engine.triage_model import NotFoundError, UsageError
from claimsync_console.store import queries_audit as qa
from claimsync_console.store import queries_engine as qe
from claimsync_console.store import queries_items as qi
from claimsync_console.store import queries_outbox as qo
from claimsync_console.store import queries_queue as qq
from claimsync_console.store import queue_search as qs
from claimsync_console.store.queries import get_blob
from claimsync_console.store.queries_engine import WorkItemFilter
from claimsync_console.x12.tokenizer import Segment, TokenizerError, tokenize

#: The CLI's queue names and the work-item kinds they stand for.
QUEUES: dict[str, str] = {
    "unmatched": "unmatched_remittance",
    "dead-letter": "dead_letter",
    "mapping": "mapping_error",
    "approval": "approval",
    "denial": "denial",
    "rejected": "rejected_claim",
}
QUEUE_OF_KIND = {kind: name for name, kind in QUEUES.items()}
#: What an analyst calls each kind of item: the queue's title (the console's QUEUE_TITLES),
#: one item and several. Messages the engine writes for the console use these, never a kind.
KIND_TITLES: dict[str, tuple[str, str]] = {
    "unmatched_remittance": ("Unmatched remittance", "Unmatched remittances"),
    "dead_letter": ("Dead letter", "Dead letters"),
    "mapping_error": ("Mapping error", "Mapping errors"),
    "approval": ("Approval", "Approvals"),
    "denial": ("Denial", "Denials"),
    "rejected_claim": ("Rejected claim", "Rejected claims"),
}
#: The CLI's state names (``--state``) and the stored states.
STATES: dict[str, str] = {
    "open": "open",
    "in-progress": "in_progress",
    "resolved": "resolved",
    "written-off": "written_off",
    "ignored": "ignored",
}
PAGE = 500
MAX_SEGMENTS = 400
MASK = "[PHI]"  # not "***": "*" is the usual element separator
#: NM1 elements that hold a name or an id (03-07 the name, 09 the id); DMG02 is a birth date.
_MASKED: dict[str, tuple[int, ...]] = {"NM1": (3, 4, 5, 6, 7, 9), "DMG": (2,)}
#: REF qualifiers that carry a person's id: SSN, member id, medical record, insured policy.
_PERSON_REFS = frozenset({"SY", "1W", "EA", "IG", "HJ", "1L"})
#: Segments that end an 835 claim payment loop (2100 with its 2110 service lines).
_AFTER_CLAIM_LOOP = frozenset({"CLP", "LX", "TS3", "TS2", "PLB", "SE", "GE", "IEA", "ISA"})


def kind_title(kind: str, count: int = 1) -> str:
    """``Denial`` / ``Denials``; an unknown kind as it is."""
    one, several = KIND_TITLES.get(kind, (kind, kind))
    return one if count == 1 else several


def kind_for_queue(name: str) -> str:
    try:
        return QUEUES[name]
    except KeyError:
        raise UsageError(f"unknown queue {name!r}; expected one of {', '.join(QUEUES)}") from None


def resolve_payer(session: Session, typed: str, *, said: str | None = None) -> str:
    """A payer as an analyst names it (an id, or a piece of the name the queues show) as the id
    the items are filed under: the one payer on file that matches becomes its id; several are
    named, never guessed (UsageError, exit 2; ``said`` is how the filter was typed, for the
    message); none leaves the text as it is, to be taken as an id. The console's ``payer:``
    and the CLI's ``--payer`` both come here, so one spelling selects the same items."""
    found = qs.payers_like(session, typed)
    if len(found) <= 1:
        return found[0][0] if found else typed
    named = ", ".join(f"{name} ({pid})" for pid, name in found)
    raise UsageError(f"{said or 'payer:' + typed} matches {len(found)} payers: {named}")


def state_for(name: str) -> str:
    try:
        return STATES[name]
    except KeyError:
        raise UsageError(f"unknown state {name!r}; expected one of {', '.join(STATES)}") from None


# -- listing -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemQuery:
    """``where`` as the database filters it, plus ``created_before`` and ``error_contains``."""

    where: WorkItemFilter = field(default_factory=WorkItemFilter)
    created_before: datetime | None = None
    error_contains: str | None = None

    @property
    def narrowing(self) -> bool:
        """True when rows must be looked at (the filter alone does not say which)."""
        return self.created_before is not None or bool(self.error_contains)

    def database_filter(self) -> WorkItemFilter:
        """The error text narrows in the database too (a superset: the text search also sees
        payer, trace and claim numbers), so a long queue is not read row by row."""
        if self.error_contains:
            return replace(self.where, text=self.error_contains)
        return self.where


@dataclass(frozen=True, slots=True)
class ItemPage:
    items: list[Any]
    more: bool


def find_items(session: Session, query: ItemQuery, *, limit: int) -> ItemPage:
    """Up to ``limit`` items, oldest first; ``more`` says whether others match too."""
    found: list[Any] = []
    cursor: qe.PageCursor | None = None
    needle = (query.error_contains or "").lower()
    while True:
        page = qe.list_work_items(session, query.database_filter(), after=cursor, limit=PAGE)
        for item in page.items:
            if query.created_before is not None and item.created_at >= query.created_before:
                return ItemPage(found, False)  # oldest first: every later item is younger
            if needle and needle not in (item.error or "").lower():
                continue
            if len(found) == limit:
                return ItemPage(found, True)
            found.append(item)
        if page.next_cursor is None:
            return ItemPage(found, False)
        cursor = page.next_cursor


def find_ids(session: Session, query: ItemQuery, *, limit: int) -> list[int]:
    return [item.id for item in find_items(session, query, limit=limit).items]


def item_json(item: Any, now: datetime, pending: dict[int, int] | None = None) -> dict[str, Any]:
    """One item's row in a queue, JSON-ready (money as decimal strings, times ISO UTC).
    ``pending_approval``: the approval item its write-off request waits on, while it waits
    (``pending``, from ``pending_approvals``, says which do; None: the item's details)."""
    if pending is None:
        pending = pending_approvals(None, [item])
    return {
        "id": item.id,
        "queue": QUEUE_OF_KIND.get(item.kind, item.kind),
        "kind": item.kind,
        "state": item.state,
        "version": item.version,
        "amount": str(item.amount),
        "payer_id": item.payer_id,
        "payer_name": item.payer_name,
        "patient_control_number": item.patient_control_number,
        "trace_number": item.trace_number,
        "error": item.error,
        "error_signature": item.error_signature,
        "claim_payment_id": item.claim_payment_id,
        "claim_id": item.claim_id,
        "remittance_id": item.remittance_id,
        "outbox_id": item.outbox_id,
        "assigned_to": item.assigned_to,
        "lease_expires_at": iso(item.lease_expires_at),
        "requested_by": item.requested_by,
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "resolved_at": iso(item.resolved_at),
        "age_seconds": max(0, int((now - item.created_at).total_seconds())),
        "pending_approval": pending.get(item.id),
    }


def pending_approvals(session: Session | None, items: Sequence[Any]) -> dict[int, int]:
    """Item id -> the approval item its write-off request waits on. With a session, only the
    requests still open count (one query for all of ``items``); without, ``details`` says."""
    asked = {
        item.id: int(pending)
        for item in items
        if (pending := (item.details or {}).get("pending_approval")) is not None
    }
    if session is None or not asked:
        return asked
    return qq.pending_approvals(session, list(asked))


# -- one item ----------------------------------------------------------------------------------


def item_detail(session: Session, item_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything ``claimsync items show`` prints: the item, its source segments (masked), the
    matcher's candidates, its audit history, the actions taken on it and its posting's
    attempts."""
    item = qe.get_work_item(session, item_id)
    if item is None:
        raise NotFoundError(f"no work item {item_id}", item_id=item_id)
    at = now or datetime.now(UTC)
    source = _source_range(session, item)
    segments, truncated = _segments(session, source) if source is not None else ([], False)
    outbox = qo.get_outbox_row(session, item.outbox_id) if item.outbox_id is not None else None
    attempts = qo.attempt_history(session, outbox.id) if outbox is not None else []
    details = dict(item.details or {})
    return {
        "item": {**item_json(item, at, pending_approvals(session, [item])), "details": details},
        "source": _source_json(source),
        "segments": segments,
        "segments_truncated": truncated,
        "candidates": list(details.get("candidates", [])),
        "history": list(audit_rows(session, AuditFilter(work_item_id=item.id))),
        "actions": [_action_json(a) for a in qa.item_actions(session, item.id)],
        "outbox": _outbox_json(outbox),
        "attempts": [
            {
                "at": iso(a.attempted_at),
                "outcome": a.outcome,
                "error": a.error,
                "latency_ms": a.latency_ms,
            }
            for a in attempts
        ],
    }


def _source_range(session: Session, item: Any) -> qi.SourceRange | None:
    """The claim payment behind the item, else the 277CA status (a rejected claim), else the
    check (a PLB posting)."""
    if item.claim_payment_id is not None:
        return qi.claim_payment_range(session, item.claim_payment_id)
    status_id = (item.details or {}).get("claim_status_id")
    if status_id is not None:
        return qi.claim_status_range(session, int(status_id))
    if item.remittance_id is not None:
        return qi.remittance_range(session, item.remittance_id)
    return None


def _source_json(source: qi.SourceRange | None) -> dict[str, Any] | None:
    if source is None:
        return None
    return {
        "kind": source.kind,
        "file_id": source.file_id,
        "file_name": source.file_name,
        "sha256": source.sha256,
        "segment_start": source.segment_start,
        "segment_end": source.segment_end,
    }


def _segments(session: Session, source: qi.SourceRange) -> tuple[list[dict[str, Any]], bool]:
    """The range's segments from the stored bytes, masked. A claim payment runs to the end of
    its CLP loop (the next CLP, LX, PLB or SE), whatever ``segment_end`` says; a whole check
    (``remittance``) shows its header, PLBs and trailer only: its claim loops are other items'."""
    content = get_blob(session, source.sha256)
    if content is None:
        return [], False
    shown: list[dict[str, Any]] = []
    in_claims = False
    try:
        for segment in tokenize(content):
            if segment.index < source.segment_start:
                continue
            if _past_end(source, segment, segment.index == source.segment_start):
                break
            if source.kind == "remittance":
                in_claims = _in_claim_loops(segment.id, in_claims)
                if in_claims:
                    continue
            if len(shown) == MAX_SEGMENTS:
                return shown, True
            shown.append({"index": segment.index, "id": segment.id, "text": masked(segment)})
    except TokenizerError:
        return shown, False
    return shown, False


def _past_end(source: qi.SourceRange, segment: Segment, first: bool) -> bool:
    if source.kind == "claim_payment":
        return not first and segment.id in _AFTER_CLAIM_LOOP
    if segment.id in ("GE", "IEA", "ISA"):
        return True
    return source.segment_end is not None and segment.index > source.segment_end


def _in_claim_loops(segment_id: str, inside: bool) -> bool:
    if segment_id in ("LX", "CLP"):
        return True
    if segment_id in ("PLB", "SE"):
        return False
    return inside


def masked(segment: Segment) -> str:
    """The segment's text with people's names, ids and birth dates replaced by ``[PHI]``."""
    elements = list(segment.elements)
    positions = _MASKED.get(segment.id, ())
    if segment.id == "REF" and segment.get(1) in _PERSON_REFS:
        positions = (2,)
    for position in positions:
        if position < len(elements) and elements[position]:
            elements[position] = MASK
    return segment.delimiters.element.join(elements)


def _action_json(action: Any) -> dict[str, Any]:
    return {
        "id": action.id,
        "action": action.action,
        "operator": action.operator,
        "role": action.role,
        "created_at": iso(action.created_at),
        "outbox_id": action.outbox_id,
        "reverses_action_id": action.reverses_action_id,
        "reversed_by_action_id": action.reversed_by_action_id,
        "payload": action.payload,
    }


def _outbox_json(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "idempotency_key": row.idempotency_key,
        "amount": str(row.amount),
        "cash_amount": str(row.cash_amount),
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at),
        "last_error": row.last_error,
        "erp_reference": row.erp_reference,
        "posted_at": iso(row.posted_at),
    }
