"""Queries on the engine's tables. Like ``queries.py``, every function takes a Session and never
commits: the caller's transaction is what makes a state change and its outbox row atomic.

Work items are opened with ``INSERT .. ON CONFLICT DO NOTHING`` on ``(kind, source_key)``, so two
workers reprocessing the same source race safely to one row. Lists are keyset-paged on
``(created_at, id)``, which the ``(kind, state, created_at, id)`` index serves at a million rows
where OFFSET paging would read every skipped row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, Table, and_, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from claimsync_console.domain import TERMINAL_STATES, WorkItemKind, WorkItemState
from claimsync_console.store.models import ClaimPaymentRow
from claimsync_console.store.models_engine import AuditEntry, ClaimAck, PaymentMatch, WorkItem

# Listing, counting and totals live in ``queries_engine_lists``; re-exported (``X as X``) so
# every ``from claimsync_console.store.queries_engine import WorkItemFilter`` keeps working.
from claimsync_console.store.queries_engine_lists import (
    OPEN_STATES as OPEN_STATES,
)
from claimsync_console.store.queries_engine_lists import (
    PageCursor as PageCursor,
)
from claimsync_console.store.queries_engine_lists import (
    QueueTotal as QueueTotal,
)
from claimsync_console.store.queries_engine_lists import (
    SignatureGroup as SignatureGroup,
)
from claimsync_console.store.queries_engine_lists import (
    WorkItemFilter as WorkItemFilter,
)
from claimsync_console.store.queries_engine_lists import (
    WorkItemPage as WorkItemPage,
)
from claimsync_console.store.queries_engine_lists import (
    count_work_items as count_work_items,
)
from claimsync_console.store.queries_engine_lists import (
    list_work_items as list_work_items,
)
from claimsync_console.store.queries_engine_lists import (
    queue_totals as queue_totals,
)
from claimsync_console.store.queries_engine_lists import (
    signature_groups as signature_groups,
)

GENESIS_HASH = "0" * 64
AUDIT_LOCK_KEY = 7_316_221  # pg_advisory_xact_lock key serialising appends to the audit chain


class StaleWorkItemError(Exception):
    """The item changed since it was read (its version moved on): reload and decide again."""


class Opened(NamedTuple):
    id: int
    created: bool


# -- opening and changing work items -----------------------------------------------------------


# Every column a new item may leave out, so one executemany can carry items of any kind.
ITEM_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(("payer_id", "payer_name", "patient_control_number", "trace_number"), ""),
    **dict.fromkeys(("error", "error_signature"), ""),
    **dict.fromkeys(("claim_payment_id", "claim_id", "remittance_id", "outbox_id"), None),
    **dict.fromkeys(("assigned_to", "lease_expires_at", "requested_by", "resolved_at"), None),
}


def open_work_item(
    session: Session,
    *,
    kind: WorkItemKind | str,
    source_key: str,
    amount: Decimal,
    now: datetime,
    reopen: bool = False,
    **fields: Any,
) -> Opened:
    """Insert-or-get by ``(kind, source_key)``. ``fields`` are other WorkItem columns.

    With ``reopen``, an existing item that was closed goes back to ``open`` with the new fields:
    a posting that dies again after a retry is news, not a duplicate. An item someone is
    working on (``in_progress``) is left alone."""
    item = {"kind": kind, "source_key": source_key, "amount": amount, **fields}
    opened = open_work_items(session, [item], now=now)[0]
    if opened.created or not reopen:
        return opened
    existing = session.execute(
        select(WorkItem.state, WorkItem.version).where(WorkItem.id == opened.id)
    ).one()
    if WorkItemState(existing.state) in TERMINAL_STATES:
        update_work_item(
            session,
            opened.id,
            expected_version=existing.version,
            now=now,
            state=WorkItemState.OPEN.value,
            amount=amount,
            resolved_at=None,
            assigned_to=None,
            lease_expires_at=None,
            **fields,
        )
    return opened


def open_work_items(
    session: Session, items: Sequence[dict[str, Any]], *, now: datetime
) -> list[Opened]:
    """Insert-or-get many items in one multi-row INSERT .. ON CONFLICT DO NOTHING; each dict
    holds ``kind``, ``source_key``, ``amount`` and any other columns. Results follow ``items``.
    Race-safe: a concurrent writer's row wins and is returned with ``created=False``."""
    if not items:
        return []
    rows = [
        {**ITEM_DEFAULTS, "details": {}, **item, "kind": str(item["kind"]),
         "state": WorkItemState.OPEN.value, "version": 1, "created_at": now, "updated_at": now}
        for item in items
    ]  # fmt: skip
    table = cast(Table, WorkItem.__table__)
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):  # pragma: no cover - the supported stores
        raise NotImplementedError(f"no insert-or-ignore for {dialect}")
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=["kind", "source_key"])
        .returning(table.c.kind, table.c.source_key, table.c.id)
    )
    created: dict[tuple[str, str], int] = {}
    for start in range(0, len(rows), 500):
        result = session.execute(statement, rows[start : start + 500])
        created.update(((k, key), item_id) for k, key, item_id in result)
    missing = {(r["kind"], r["source_key"]) for r in rows} - created.keys()
    existing = _ids_by_source(session, missing)
    results: list[Opened] = []
    for key in ((r["kind"], r["source_key"]) for r in rows):
        if key in created:  # a key repeated within the batch is created once
            results.append(Opened(created.pop(key), True))
            existing[key] = results[-1].id
        else:
            results.append(Opened(existing[key], False))
    return results


def _ids_by_source(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    by_kind: dict[str, list[str]] = {}
    for kind, source_key in keys:
        by_kind.setdefault(kind, []).append(source_key)
    found: dict[tuple[str, str], int] = {}
    table = cast(Table, WorkItem.__table__)
    for kind, source_keys in by_kind.items():
        for start in range(0, len(source_keys), 500):
            rows = session.execute(
                select(table.c.source_key, table.c.id).where(
                    table.c.kind == kind, table.c.source_key.in_(source_keys[start : start + 500])
                )
            )
            found.update(((kind, key), item_id) for key, item_id in rows)
    return found


def update_work_item(
    session: Session, item_id: int, *, expected_version: int, now: datetime, **values: Any
) -> int:
    """Change an item only if nobody else did since ``expected_version``; returns the new
    version. Raises StaleWorkItemError otherwise (the triage service maps it to Conflict)."""
    result = cast(
        CursorResult[Any],
        session.execute(
            update(WorkItem)
            .where(WorkItem.id == item_id, WorkItem.version == expected_version)
            .values(version=WorkItem.version + 1, updated_at=now, **values)
            .execution_options(synchronize_session="fetch")
        ),
    )
    if result.rowcount != 1:
        raise StaleWorkItemError(f"work item {item_id} is no longer at version {expected_version}")
    return expected_version + 1


def get_work_item(session: Session, item_id: int) -> WorkItem | None:
    return session.get(WorkItem, item_id)


def get_work_item_by_source(
    session: Session, kind: WorkItemKind | str, source_key: str
) -> WorkItem | None:
    return session.scalars(
        select(WorkItem).where(WorkItem.kind == str(kind), WorkItem.source_key == source_key)
    ).one_or_none()


# -- matches and acknowledgements --------------------------------------------------------------


def get_payment_match(session: Session, claim_payment_id: int) -> PaymentMatch | None:
    return session.scalars(
        select(PaymentMatch).where(PaymentMatch.claim_payment_id == claim_payment_id)
    ).one_or_none()


def payment_matches_for_claim(session: Session, claim_id: int) -> Sequence[PaymentMatch]:
    """Every payment (and linked reversal) booked against a claim: a split claim accumulates."""
    return session.scalars(
        select(PaymentMatch).where(PaymentMatch.claim_id == claim_id).order_by(PaymentMatch.id)
    ).all()


def claim_paid_totals(session: Session, claim_ids: Iterable[int]) -> dict[int, Decimal]:
    """Σ CLP04 of the payments matched to each claim, reversals included (they are negative)."""
    ids = list(claim_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(PaymentMatch.claim_id, func.sum(ClaimPaymentRow.paid))
        .join(ClaimPaymentRow, ClaimPaymentRow.id == PaymentMatch.claim_payment_id)
        .where(PaymentMatch.claim_id.in_(ids))
        .group_by(PaymentMatch.claim_id)
    )
    return {int(claim_id or 0): total for claim_id, total in rows}


def match_status_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(PaymentMatch.status, func.count(PaymentMatch.id)).group_by(PaymentMatch.status)
    )
    return {status: int(n) for status, n in rows}


def claim_ack_states(session: Session, claim_ids: Iterable[int]) -> dict[int, str]:
    """Each claim's newest 277CA verdict (accepted, rejected, pending, other)."""
    ids = list(claim_ids)
    if not ids:
        return {}
    newest = (
        select(ClaimAck.claim_id, func.max(ClaimAck.claim_status_id).label("status_id"))
        .where(ClaimAck.claim_id.in_(ids))
        .group_by(ClaimAck.claim_id)
        .subquery()
    )
    rows = session.execute(
        select(ClaimAck.claim_id, ClaimAck.state).join(
            newest,
            and_(
                ClaimAck.claim_id == newest.c.claim_id,
                ClaimAck.claim_status_id == newest.c.status_id,
            ),
        )
    )
    return {int(claim_id or 0): state for claim_id, state in rows}


# -- the audit chain ---------------------------------------------------------------------------

AUDIT_FIELDS = (
    "at", "operator", "role", "action", "work_item_id", "target", "before", "after", "reason",
    "note",
)  # fmt: skip


def audit_hash(fields: dict[str, Any], prev_hash: str) -> str:
    """sha256 over canonical JSON (sorted keys, no spaces, times as UTC ISO) of the fields and
    the previous hash. JSON values must already be JSON-safe (money as decimal strings)."""
    payload = {name: fields.get(name) for name in AUDIT_FIELDS}
    at = payload["at"]
    if isinstance(at, datetime):
        payload["at"] = at.astimezone(UTC).isoformat()
    payload["prev_hash"] = prev_hash
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def append_audit(session: Session, **fields: Any) -> AuditEntry:
    """Append one row at the chain's end. On PostgreSQL an advisory lock serialises writers;
    on SQLite the single writer does; ``prev_hash`` being unique catches anything else."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    last = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    prev_hash = last or GENESIS_HASH
    row = {name: fields.get(name) for name in AUDIT_FIELDS}
    row.update(target=row["target"] or "", reason=row["reason"] or "", note=row["note"] or "")
    entry = AuditEntry(**row, prev_hash=prev_hash, hash=audit_hash(row, prev_hash))
    session.add(entry)
    session.flush()
    return entry


def verify_audit_chain(session: Session, *, batch: int = 1000) -> int | None:
    """The id of the first row whose hash or link does not check out, or None if intact."""
    prev_hash, after = GENESIS_HASH, 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id).limit(batch)
        ).all()
        if not rows:
            return None
        for row in rows:
            fields = {name: getattr(row, name) for name in AUDIT_FIELDS}
            if row.prev_hash != prev_hash or row.hash != audit_hash(fields, prev_hash):
                return row.id
            prev_hash, after = row.hash, row.id
