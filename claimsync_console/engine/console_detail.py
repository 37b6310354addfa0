"""The console's item detail: ``item_detail`` (what ``claimsync items show`` prints) plus what a
screen needs beside it: the parsed claim and payment, the check's segments with this claim's
CLP loop flagged, a preview of the journal lines the item's posting is (or would be), and the
actions that can still be reversed.

The console imports no SQL, so it asks for one :class:`ItemView` per item, read in one session.
A preview is only a preview: the triage service rebuilds the entry when it acts, so a preview
can never post, and a rule that is missing shows here as the mapping error it would be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import (
    ClaimPayment,
    JournalEntry,
    UnbalancedEntryError,
    WorkItemKind,
)
from claimsync_console.engine.item_detail import item_detail, masked
from claimsync_console.engine.outbox import entry_from_json
from claimsync_console.engine.posting import (
    MissingRules,
    PostingPlan,
    build_payment_entry,
    build_write_off_entry,
)
from claimsync_console.engine.rules import MissingRule, RulesBook
from claimsync_console.engine.triage_model import ACTIVE_STATES, WRITE_OFF_KINDS, approve_refusal
from claimsync_console.engine.triage_postings import parties
from claimsync_console.engine.triage_write_off import REVERSIBLE
from claimsync_console.store import hydrate
from claimsync_console.store import queries_engine as qe
from claimsync_console.store import queries_items as qi
from claimsync_console.store import queries_outbox as qo
from claimsync_console.store.models import ClaimRow
from claimsync_console.store.models_engine import WorkItem
from claimsync_console.store.queries import get_blob
from claimsync_console.x12.tokenizer import TokenizerError, tokenize

MAPPING_ERROR = WorkItemKind.MAPPING_ERROR.value
APPROVAL = WorkItemKind.APPROVAL.value
REPROCESS = "Add a rule, then remap --reprocess."
MAX_HEADER = 40  # a check's header (BPR, TRN, N1 loops) is a dozen segments; more is odd
MAX_LOOP = 300
#: Segments that end a CLP loop (the next claim, a service loop's end, the check's trailer).
_LOOP_END = frozenset({"CLP", "LX", "TS3", "TS2", "PLB", "SE", "GE", "IEA", "ISA"})


@dataclass(frozen=True, slots=True)
class SegmentLine:
    """One raw segment, PHI masked. ``in_loop``: part of this item's CLP loop; ``skipped``:
    how many segments (other claims) were left out before this one."""

    index: int
    id: str
    text: str
    in_loop: bool = False
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class PreviewLine:
    account: str
    debit: Decimal
    credit: Decimal
    memo: str


@dataclass(frozen=True, slots=True)
class PostingPreview:
    """``title`` says whose entry this is (queued, held, or what an action would post)."""

    title: str
    lines: tuple[PreviewLine, ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class ItemView:
    """Everything the detail screen shows about one item, read in one session."""

    item: dict[str, Any]
    claim: dict[str, Any] | None
    payment: dict[str, Any] | None
    segments: tuple[SegmentLine, ...]
    segments_truncated: bool
    candidates: list[dict[str, Any]]
    posting: PostingPreview | None
    history: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    outbox: dict[str, Any] | None
    reversible: list[dict[str, Any]] = field(default_factory=list)
    #: an approval's origin: the item whose write-off it asks for (id, kind, state, amount)
    origin: dict[str, Any] | None = None

    @property
    def item_id(self) -> int:
        return int(self.item["id"])


def load_item_view(
    sessions: sessionmaker[Session], rules: RulesBook, item_id: int, *, now: datetime
) -> ItemView:
    """Raises ``NotFoundError`` for an unknown id (the screen says so)."""
    with sessions() as session:
        base = item_detail(session, item_id, now=now)
        item = qe.get_work_item(session, item_id)
        assert item is not None  # item_detail found it in this same session
        payment = _payment(session, item.claim_payment_id)
        segments, truncated = _segments(session, item.remittance_id, item.claim_payment_id)
        if not segments:
            segments = tuple(SegmentLine(s["index"], s["id"], s["text"]) for s in base["segments"])
            truncated = bool(base["segments_truncated"])
        posting = _posting(session, rules, item, payment, now)
        claim = _claim(session, _claim_id(session, item))
        origin = _origin(session, item.details or {})
        reversible = _with_amounts(session, reversible_actions(base["actions"]))
    return ItemView(
        item=base["item"],
        claim=claim,
        payment=_payment_json(payment),
        segments=segments,
        segments_truncated=truncated,
        candidates=base["candidates"],
        posting=posting,
        history=base["history"],
        actions=base["actions"],
        attempts=base["attempts"],
        outbox=base["outbox"],
        reversible=reversible,
        origin=origin,
    )


def reversible_actions(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The item's write-offs and approvals that posted and were not reversed, newest first:
    what ``reverse`` may undo (the service still checks that the posting reached the ledger)."""
    found = [
        a
        for a in actions
        if a["action"] in REVERSIBLE
        and a["outbox_id"] is not None
        and a["reversed_by_action_id"] is None
    ]
    return sorted(found, key=lambda a: a["id"], reverse=True)


def _with_amounts(session: Session, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each action with the ``amount`` its reversal takes back (its posting's: an approval's
    own amount also counts earlier write-offs) and its ``reason``, for the reverse dialog."""
    shown = []
    for a in actions:
        payload, row = a.get("payload") or {}, qo.get_outbox_row(session, a["outbox_id"])
        amount = row.amount if row is not None else Decimal(str(payload.get("amount", "0")))
        reason = str(payload.get("reason") or payload.get("code") or "")
        shown.append({**a, "amount": amount, "reason": reason})
    return shown


def approve_refusal_for(view: ItemView, triage: Any) -> str | None:
    """Why ``triage``'s operator may not approve the item shown, else None: the service's own
    check, asked before the note. Only for an open approval item; on any other the service
    says what is wrong."""
    item = view.item
    if item["kind"] != APPROVAL or item["state"] not in ACTIVE_STATES:
        return None
    return approve_refusal(triage.rules, view.item_id, item.get("details") or {},
                           Decimal(item["amount"]), item.get("requested_by"),
                           operator=triage.operator, role=triage.role)  # fmt: skip


# -- the parsed claim and payment ----------------------------------------------------------------


def _claim(session: Session, claim_id: int | None) -> dict[str, Any] | None:
    """The billed claim, without its people (they are PHI, revealed on request only)."""
    row = session.get(ClaimRow, claim_id) if claim_id is not None else None
    if row is None:
        return None
    return {
        "id": row.id,
        "patient_control_number": row.patient_control_number,
        "billed_amount": row.billed_amount,
        "payer": f"{row.payer_name} ({row.payer_identifier})",
        "billing_provider": f"{row.billing_provider_name} NPI {row.billing_provider_npi}",
        "service_dates": _dates(row.service_date_from, row.service_date_to),
        "frequency_code": row.frequency_code,
        "payer_claim_control_number": row.payer_claim_control_number,
    }


def claim_payer_name(sessions: sessionmaker[Session], claim_id: int) -> str:
    """For the remap dialog: the candidates and the claim search carry the payer's id only."""
    with sessions() as session:
        row = session.get(ClaimRow, claim_id)
        return (row.payer_name or "") if row is not None else ""


def _claim_id(session: Session, item: Any) -> int | None:
    """The item's claim, else the one its payment was matched to: a mapping error is raised
    after the match, on the payment alone, so only the match knows the claim."""
    if item.claim_id is not None or item.claim_payment_id is None:
        return item.claim_id
    match = qe.get_payment_match(session, item.claim_payment_id)
    return match.claim_id if match is not None else None


def _origin(session: Session, details: dict[str, Any]) -> dict[str, Any] | None:
    """The item a write-off approval was requested on: a supervisor must see what they
    approve (its note is the approval's ``details.origin``)."""
    wanted = (details.get("origin") or {}).get("work_item_id")
    row = session.get(WorkItem, int(wanted)) if wanted is not None else None
    if row is None:
        return None
    return {"id": row.id, "kind": row.kind, "state": row.state, "amount": row.amount}


def _service_date(payment: ClaimPayment) -> str:
    """The payment's first date of service (the CLP's statement date, else a line's): what a
    remap compares with the claim's."""
    found = [d.value for d in payment.dates if d.qualifier == "232" and d.value]
    for service in payment.services:
        found += [d.value for d in service.dates if d.qualifier in ("472", "150") and d.value]
    return found[0].isoformat() if found else ""


def _dates(start: date | None, end: date | None) -> str:
    if start is None:
        return ""
    return start.isoformat() if end in (None, start) else f"{start.isoformat()} to {end}"


def _payment(session: Session, claim_payment_id: int | None) -> ClaimPayment | None:
    if claim_payment_id is None:
        return None
    return hydrate.load_claim_payments(session, [claim_payment_id]).get(claim_payment_id)


def _payment_json(payment: ClaimPayment | None) -> dict[str, Any] | None:
    if payment is None:
        return None
    adjustments = [("claim", a.group, a.reason_code, a.amount) for a in payment.adjustments]
    for service in payment.services:
        line = f"{service.procedure_code or service.revenue_code}"
        adjustments += [(line, a.group, a.reason_code, a.amount) for a in service.adjustments]
    return {
        "patient_control_number": payment.patient_control_number,
        "status_code": payment.status_code,
        "charge": payment.charge,
        "paid": payment.paid,
        "patient_responsibility": payment.patient_responsibility,
        "payer_claim_control_number": payment.payer_claim_control_number,
        "service_date": _service_date(payment),
        "services": [
            (s.procedure_code or s.revenue_code, s.charge, s.paid) for s in payment.services
        ],
        "adjustments": adjustments,
    }


# -- the raw segments --------------------------------------------------------------------------


def _segments(
    session: Session, remittance_id: int | None, claim_payment_id: int | None
) -> tuple[tuple[SegmentLine, ...], bool]:
    """The check's header, then (after a gap) this claim's CLP loop, flagged. Empty when the
    item has no claim payment (item_detail's own range is shown instead)."""
    if remittance_id is None or claim_payment_id is None:
        return (), False
    check = qi.remittance_range(session, remittance_id)
    loop = qi.claim_payment_range(session, claim_payment_id)
    content = get_blob(session, loop.sha256) if loop is not None else None
    if check is None or loop is None or content is None:
        return (), False
    shown: list[SegmentLine] = []
    last = check.segment_start - 1
    try:
        for segment in tokenize(content):
            if segment.index < check.segment_start:
                continue
            in_loop = segment.index >= loop.segment_start
            if in_loop and segment.index > loop.segment_start and segment.id in _LOOP_END:
                return tuple(shown), False
            header = not in_loop and segment.id not in ("LX", "CLP") and last == segment.index - 1
            if not (header or in_loop):
                continue
            if len(shown) >= MAX_HEADER + MAX_LOOP:
                return tuple(shown), True
            skipped = segment.index - last - 1
            shown.append(SegmentLine(segment.index, segment.id, masked(segment), in_loop, skipped))
            last = segment.index
    except TokenizerError:
        return tuple(shown), False
    return tuple(shown), False


# -- the posting preview -----------------------------------------------------------------------


def _posting(
    session: Session, rules: RulesBook, item: Any, payment: ClaimPayment | None, now: datetime
) -> PostingPreview | None:
    """The entry the item holds or queued; else what its usual action would post."""
    held = (item.details or {}).get("posting")
    if held and held.get("entry"):
        return _preview("Held for approval", entry_from_json(held["entry"]))
    outbox = qo.get_outbox_row(session, item.outbox_id) if item.outbox_id is not None else None
    if outbox is not None:
        title = f"Outbox {outbox.id} ({outbox.status})"
        if outbox.status == "dead":  # a dead letter: say whose entry it is
            title = f"The entry the ERP refused (outbox {outbox.id}, dead)"
        return _preview(title, entry_from_json(outbox.entry))
    if item.kind in WRITE_OFF_KINDS:
        return _write_off_preview(session, rules, item, now)
    if payment is not None and item.remittance_id is not None:
        header, _ = hydrate.load_remittance_header(session, item.remittance_id)
        try:
            plan = build_payment_entry(
                header, payment, rules, source_key="preview", entry_date=now.date()
            )
        except UnbalancedEntryError as error:
            return PostingPreview("The payment's entry", note=str(error))
        if item.kind == MAPPING_ERROR:
            return _plan_preview("The payment's entry, once its rules exist", plan, REPROCESS)
        return _plan_preview("The payment's entry, once matched", plan)
    return None


def write_off_reason(rules: RulesBook, details: dict[str, Any]) -> str:
    """The denial's own CARC when the rules can write it off, else the first reason they know."""
    for code in details.get("carcs", []):
        if code in rules.write_offs:
            return str(code)
    return next(iter(sorted(rules.write_offs)), "")


def _write_off_preview(
    session: Session, rules: RulesBook, item: Any, now: datetime
) -> PostingPreview:
    reason = write_off_reason(rules, item.details or {})
    payer_id, facility_id = parties(session, item, rules)
    plan = build_write_off_entry(
        reason=reason,
        amount=item.amount,
        payer_id=payer_id,
        facility_id=facility_id,
        rules=rules,
        source_key="preview",
        entry_date=now.date(),
        reference=item.patient_control_number or item.trace_number,
    )
    return _plan_preview(f"If written off as {reason}", plan, "Add a rule, then write off.")


def _plan_preview(
    title: str, plan: PostingPlan | MissingRules, then: str = "Add a rule before remapping it."
) -> PostingPreview:
    if isinstance(plan, MissingRules):
        return PostingPreview(title, note=missing_note(plan, then))
    if plan.entry is None:
        return PostingPreview(title, note=plan.note)
    return _preview(title, plan.entry)


def _preview(title: str, entry: JournalEntry) -> PostingPreview:
    lines = tuple(PreviewLine(ln.account, ln.debit, ln.credit, ln.memo) for ln in entry.lines)
    return PostingPreview(title, lines)


def missing_note(plan: MissingRules, then: str) -> str:
    """What is missing in the words an analyst uses (rules.py's own text is for logs and
    signatures), and what to do next: "Cannot post yet: no posting rule for OA-121 (group
    OA, reason 121). Add a rule, then remap --reprocess."."""
    said = "; ".join(_missing_rule(m) for m in plan.missing)
    if len(plan.missing) > 1:
        then = then.replace("Add a rule", "Add the rules")
    return f"Cannot post yet: {said or 'a posting rule is missing'}. {then}"


def _missing_rule(rule: MissingRule) -> str:
    if rule.kind == "carc" and "-" in rule.key:
        group, reason = rule.key.split("-", 1)
        return f"no posting rule for {rule.key} (group {group}, reason {reason})"
    name = {"plb": "PLB adjustment", "write_off": "write-off reason"}.get(rule.kind, rule.kind)
    extra = f" ({rule.detail})" if rule.detail else ""
    return f"no {name} rule for {rule.key}{extra}"
