"""Aggregates behind reconciliation: per 835 remittance, the cash posted, queued and held back.

Every query groups by ``remittance_id`` in SQL (the outbox, the work items and the claim
payments all carry it, indexed), so the engine receives one row per (remittance, bucket) and
never one per claim payment. Each takes ``remittance_ids``: None means every remittance (the
month-end report), a list restricts to those (``--check``, or the few unbalanced checks).
Nothing here commits.

Which column holds an item's cash follows how the engine opens it (``engine.workitems`` and
``engine.pipeline``): ``amount`` for unmatched remittances (CLP04 as paid) and mapping errors
(the source's cash), the outbox row's ``cash_amount`` for dead letters, and
``details.cash_amount`` for approvals (their ``amount`` is the adjustment being approved). That
last one is JSON, which SQL cannot sum exactly on SQLite, so it is summed here in Decimal over
the open approvals only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, exists, func, literal, not_, select
from sqlalchemy.orm import Session

from claimsync_console.domain import ZERO
from claimsync_console.store.models import (
    ClaimPaymentRow,
    FileBlob,
    ProviderAdjustmentRow,
    Remittance,
    SourceFile,
)
from claimsync_console.store.models_engine import OutboxEntry, PaymentMatch, WorkItem
from claimsync_console.store.queries_engine import OPEN_STATES

RM = cast(Table, Remittance.__table__)
CP = cast(Table, ClaimPaymentRow.__table__)
PM = cast(Table, PaymentMatch.__table__)
OB = cast(Table, OutboxEntry.__table__)
WI = cast(Table, WorkItem.__table__)
PL = cast(Table, ProviderAdjustmentRow.__table__)

#: Item kinds that hold a check's cash back while open. Denials and rejected claims hold none.
CASH_KINDS = ("unmatched_remittance", "mapping_error", "approval", "dead_letter")
#: Closed states in which an item's cash was never posted (hints for an unexplained variance).
ABANDONED_STATES = ("ignored", "written_off")
POSTABLE_MATCHES = ("matched", "reversal_linked")
HOLDING_KINDS = ("mapping_error", "approval")  # what keeps a matched payment out of the outbox
POSTING_KINDS = ("payment", "reversal")  # the outbox rows that post a claim payment's cash


@dataclass(frozen=True, slots=True)
class RemittanceRow:
    id: int
    trace_number: str
    payer_identifier: str
    payer_name: str
    payment_date: date | None
    production_date: date | None
    payment_amount: Decimal
    credit_debit: str


@dataclass(frozen=True, slots=True)
class Bucket:
    """Cash of one kind for one remittance: ``key`` is an outbox status or an item class."""

    remittance_id: int
    key: str
    amount: Decimal
    count: int


def _scoped(query: Any, column: Any, remittance_ids: Sequence[int] | None) -> Any:
    return query if remittance_ids is None else query.where(column.in_(list(remittance_ids)))


def remittances(session: Session, *, trace: str | None = None) -> list[RemittanceRow]:
    """Every 835 transaction (or those of one TRN02), by trace then id."""
    query = select(
        RM.c.id, RM.c.trace_number, RM.c.payer_identifier, RM.c.payer_name, RM.c.payment_date,
        RM.c.production_date, RM.c.payment_amount, RM.c.credit_debit,
    ).order_by(RM.c.trace_number, RM.c.id)  # fmt: skip
    if trace is not None:
        query = query.where(RM.c.trace_number == trace)
    return [RemittanceRow(*row) for row in session.execute(query)]


def outbox_cash(session: Session, remittance_ids: Sequence[int] | None) -> list[Bucket]:
    """Σ ``cash_amount`` per remittance and outbox status (pending, in_flight, posted, dead)."""
    query = select(OB.c.remittance_id, OB.c.status, func.sum(OB.c.cash_amount), func.count())
    query = _scoped(
        query.where(OB.c.remittance_id.is_not(None)), OB.c.remittance_id, remittance_ids
    )
    rows = session.execute(query.group_by(OB.c.remittance_id, OB.c.status))
    return [Bucket(int(r), status, total or ZERO, int(n)) for r, status, total, n in rows]


def _open(*kinds: str) -> Any:
    return and_(WI.c.kind.in_(kinds), WI.c.state.in_(OPEN_STATES), WI.c.remittance_id.is_not(None))


def _orphans() -> Any:
    """Open unmatched items that are reversals without their original, found from the few
    ``reversal_orphan`` verdicts (indexed) rather than by joining every item to its verdict."""
    return (
        select(WI.c.id, WI.c.remittance_id, literal("reversal_orphan").label("key"), WI.c.amount)
        .select_from(PM)
        .join(WI, WI.c.id == PM.c.work_item_id)
        .where(PM.c.status == "reversal_orphan", _open("unmatched_remittance"))
    )


def _dead_letters() -> Any:
    """Open dead-letter items whose outbox row is still dead, with the row's cash: a dead
    letter whose row was queued again counts as awaiting posting instead, never twice."""
    return (
        select(WI.c.id, WI.c.remittance_id, literal("dead_letter").label("key"), OB.c.cash_amount)
        .select_from(WI)
        .join(OB, OB.c.id == WI.c.outbox_id)
        .where(_open("dead_letter"), OB.c.status == "dead")
    )


def open_item_cash(session: Session, remittance_ids: Sequence[int] | None) -> list[Bucket]:
    """Cash held by open items per remittance and class: ``unmatched_remittance`` (less the
    orphans), ``reversal_orphan``, ``mapping_error``, ``approval``, ``dead_letter``. Each class
    is its own small grouped query, so none hashes the whole outbox or match table."""
    totals: dict[tuple[int, str], list[Any]] = defaultdict(lambda: [ZERO, 0])
    plain = select(WI.c.remittance_id, WI.c.kind, func.sum(WI.c.amount), func.count()).where(
        _open("unmatched_remittance", "mapping_error", "approval")
    )
    plain = _scoped(plain, WI.c.remittance_id, remittance_ids)
    for rem_id, kind, amount, n in session.execute(plain.group_by(WI.c.remittance_id, WI.c.kind)):
        # an approval's amount is the adjustment it approves; its cash is added below
        totals[(int(rem_id), kind)] = [ZERO if kind == "approval" else amount or ZERO, int(n)]
    for special in (_orphans(), _dead_letters()):
        rows = _scoped(special, WI.c.remittance_id, remittance_ids).subquery()
        grouped = select(rows.c.remittance_id, rows.c.key, func.sum(rows.c[3]), func.count())
        for rem_id, key, amount, n in session.execute(
            grouped.group_by(rows.c.remittance_id, rows.c.key)
        ):
            totals[(int(rem_id), key)] = [amount or ZERO, int(n)]
            if key == "reversal_orphan":  # they were counted as unmatched above
                unmatched = totals[(int(rem_id), "unmatched_remittance")]
                unmatched[0] -= amount or ZERO
                unmatched[1] -= int(n)
    for rem_id, cash in _approval_cash(session, remittance_ids):
        totals[(rem_id, "approval")][0] += cash
    return [Bucket(r, key, amount, n) for (r, key), (amount, n) in totals.items() if n]


def _approval_cash(
    session: Session, remittance_ids: Sequence[int] | None
) -> list[tuple[int, Decimal]]:
    """(remittance id, cash) of each open approval: ``details.cash_amount``, 0 when absent
    (an approval of a write-off moves no cash)."""
    query = select(WI.c.remittance_id, WI.c.details["cash_amount"].as_string()).where(
        _open("approval")
    )
    rows = session.execute(_scoped(query, WI.c.remittance_id, remittance_ids))
    return [(int(r), Decimal(cash) if cash else ZERO) for r, cash in rows]


def _first_ids(session: Session, rows: Any, per_group: int) -> list[tuple[int, int, str]]:
    """(id, remittance id, key) of the first ``per_group`` rows per (remittance, key): a window
    function, so a check with 5,000 unmatched payments still returns a few ids."""
    inner = rows.subquery()
    rank = func.row_number().over(
        partition_by=(inner.c.remittance_id, inner.c.key), order_by=inner.c.id
    )
    ranked = select(inner.c.id, inner.c.remittance_id, inner.c.key, rank.label("rank")).subquery()
    found = session.execute(
        select(ranked.c.id, ranked.c.remittance_id, ranked.c.key)
        .where(ranked.c.rank <= per_group)
        .order_by(ranked.c.id)
    )
    return [(int(i), int(r), key) for i, r, key in found]


def open_item_ids(
    session: Session, remittance_ids: Sequence[int] | None, *, per_group: int
) -> dict[tuple[int, str], list[int]]:
    """The first ``per_group`` open item ids per (remittance, class of ``open_item_cash``),
    oldest first. An unmatched list may come out shorter when orphans took some of its slots;
    ``Bucket.count`` stays exact."""
    plain = select(WI.c.id, WI.c.remittance_id, WI.c.kind.label("key")).where(
        _open("unmatched_remittance", "mapping_error", "approval")
    )
    found: dict[tuple[int, str], list[int]] = defaultdict(list)
    orphan_ids: set[int] = set()
    for special in (_orphans(), _dead_letters()):
        scoped = _scoped(special, WI.c.remittance_id, remittance_ids)
        for item_id, rem_id, key in _first_ids(session, scoped, per_group):
            found[(rem_id, key)].append(item_id)
            orphan_ids.update([item_id] if key == "reversal_orphan" else [])
    scoped = _scoped(plain, WI.c.remittance_id, remittance_ids)
    for item_id, rem_id, key in _first_ids(session, scoped, per_group):
        if item_id not in orphan_ids:
            found[(rem_id, key)].append(item_id)
    return dict(found)


def unprocessed_cash(session: Session, remittance_ids: Sequence[int] | None) -> list[Bucket]:
    """Cash the engine has not decided on yet, per remittance: claim payments with no match
    verdict, matched ones with neither an outbox row nor a holding item (the pipeline's own
    definition of pending), and PLB pairs of checks with neither. CLP04 = 0 moves no cash and
    is left out, so whole-claim denials never count. Two queries rather than one OR, so that
    each NOT EXISTS plans as an anti-join instead of a probe per payment."""
    no_verdict = (
        select(CP.c.remittance_id, CP.c.paid)
        .select_from(CP)
        .outerjoin(PM, PM.c.claim_payment_id == CP.c.id)
        .where(PM.c.id.is_(None))
    )
    posted = exists().where(OB.c.claim_payment_id == CP.c.id, OB.c.kind.in_(POSTING_KINDS))
    held = exists().where(WI.c.claim_payment_id == CP.c.id, WI.c.kind.in_(HOLDING_KINDS))
    pending = (
        select(CP.c.remittance_id, CP.c.paid)
        .select_from(CP)
        .join(PM, PM.c.claim_payment_id == CP.c.id)
        .where(PM.c.status.in_(POSTABLE_MATCHES), not_(posted), not_(held))
    )
    totals: dict[int, list[Any]] = defaultdict(lambda: [ZERO, 0])
    for part in (no_verdict, pending):
        rows = _scoped(part.where(CP.c.paid != ZERO), CP.c.remittance_id, remittance_ids)
        inner = rows.subquery()
        grouped = select(inner.c.remittance_id, func.sum(inner.c.paid), func.count())
        for rem_id, amount, n in session.execute(grouped.group_by(inner.c.remittance_id)):
            totals[int(rem_id)][0] += amount or ZERO
            totals[int(rem_id)][1] += int(n)
    found = [Bucket(r, "payments", amount, n) for r, (amount, n) in totals.items()]
    return found + _unprocessed_plb(session, remittance_ids)


def _unprocessed_plb(session: Session, remittance_ids: Sequence[int] | None) -> list[Bucket]:
    posted = exists().where(OB.c.remittance_id == PL.c.remittance_id, OB.c.kind == "plb")
    held = exists().where(
        WI.c.remittance_id == PL.c.remittance_id,
        WI.c.kind.in_(HOLDING_KINDS),
        WI.c.claim_payment_id.is_(None),
    )
    query = select(PL.c.remittance_id, func.sum(PL.c.amount), func.count()).where(
        not_(posted), not_(held)
    )
    query = _scoped(query, PL.c.remittance_id, remittance_ids).group_by(PL.c.remittance_id)
    rows = session.execute(query)
    # a positive PLB reduces the check: the cash it moves is its negation
    return [Bucket(int(r), "plb", -(total or ZERO), int(n)) for r, total, n in rows]


def detail_totals(session: Session, remittance_ids: Sequence[int] | None) -> dict[int, Decimal]:
    """Σ CLP04 − Σ PLB per remittance: what the 835's own detail says the check should be. A
    payer's file that breaks BPR02 = Σ CLP04 − Σ PLB differs from it by exactly that much."""
    totals: dict[int, Decimal] = defaultdict(lambda: ZERO)
    paid = select(CP.c.remittance_id, func.sum(CP.c.paid)).group_by(CP.c.remittance_id)
    plb = select(PL.c.remittance_id, func.sum(PL.c.amount)).group_by(PL.c.remittance_id)
    for query, sign in ((paid, 1), (plb, -1)):
        column = query.selected_columns[0]
        for rem_id, total in session.execute(_scoped(query, column, remittance_ids)):
            totals[int(rem_id)] += sign * (total or ZERO)
    return dict(totals)


def abandoned_item_ids(
    session: Session, remittance_ids: Sequence[int], *, per_group: int
) -> dict[int, list[int]]:
    """Cash-holding items closed without posting (ignored, written off), per remittance: the
    usual cause of an unexplained variance. Only asked for the few unbalanced checks."""
    found: dict[int, list[int]] = defaultdict(list)
    ids = list(remittance_ids)
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(WI.c.remittance_id, WI.c.id)
            .where(WI.c.kind.in_(CASH_KINDS), WI.c.state.in_(ABANDONED_STATES))
            .where(WI.c.remittance_id.in_(ids[start : start + 500]))
            .order_by(WI.c.id)
        )
        for rem_id, item_id in rows:
            if len(found[int(rem_id)]) < per_group:
                found[int(rem_id)].append(int(item_id))
    return dict(found)


@dataclass(frozen=True, slots=True)
class QuarantinedFile:
    id: int
    name: str
    size: int
    content: bytes | None  # None when the file is larger than the caller reads


def quarantined_835_files(session: Session, *, max_bytes: int) -> list[QuarantinedFile]:
    """Every quarantined 835 file, by id, with its kept bytes when they are at most
    ``max_bytes`` long (a huge one is counted without being read). Quarantined files are few
    (a person resolves each), so this reads one row per file."""
    SF = cast(Table, SourceFile.__table__)
    FB = cast(Table, FileBlob.__table__)
    query = (
        select(SF.c.id, SF.c.name, SF.c.size, SF.c.sha256)
        .where(SF.c.status == "quarantined", SF.c.kind == "835")
        .order_by(SF.c.id)
    )
    found = []
    for file_id, name, size, sha256 in session.execute(query).all():
        content = None
        if size <= max_bytes:
            content = session.scalar(select(FB.c.content).where(FB.c.sha256 == sha256))
        found.append(QuarantinedFile(int(file_id), name, int(size), content))
    return found
