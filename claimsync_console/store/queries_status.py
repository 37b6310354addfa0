"""Read models for status screens: counts and dollar totals from indexed columns only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from claimsync_console.domain import ZERO
from claimsync_console.store.models import (
    ClaimPaymentRow,
    ClaimRow,
    ClaimStatusRow,
    Remittance,
    SourceFile,
)
from claimsync_console.store.models_engine import (
    WORK_ITEM_KINDS,
    AdapterHealth,
    ClaimAck,
    OutboxEntry,
    PaymentMatch,
    WorkItem,
)
from claimsync_console.store.models_triage import TriageAction
from claimsync_console.store.queries_engine import OPEN_STATES


def _money(value: object) -> Decimal:
    """SUM over a Money column comes back through the Money type already, as Decimal dollars."""
    if isinstance(value, Decimal):
        return value
    return ZERO if value in (None, 0) else Decimal(str(value))


def source_file_counts(session: Session) -> dict[str, int]:
    """Files per ingest status (received, loaded, quarantined)."""
    rows = session.execute(select(SourceFile.status, func.count()).group_by(SourceFile.status))
    return {status: count for status, count in rows}


def claim_totals(session: Session) -> tuple[int, Decimal]:
    """Billed claims and their billed total."""
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(ClaimRow.__table__.c.billed_amount), 0))
    ).one()
    return count, _money(total)


def claim_payment_totals(session: Session) -> tuple[int, Decimal]:
    """Claim payments (CLP) and the sum of CLP04."""
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(ClaimPaymentRow.__table__.c.paid), 0))
    ).one()
    return count, _money(total)


def remittance_totals(session: Session) -> tuple[int, Decimal]:
    """835 transactions (checks) and the sum of BPR02 as cash to the provider: a debit BPR
    (BPR03 = D) counts negative, as reconciliation counts it."""
    table = Remittance.__table__
    amount = table.c.payment_amount
    signed = case((func.upper(func.trim(table.c.credit_debit)) == "D", -amount), else_=amount)
    count, total = session.execute(select(func.count(), func.coalesce(func.sum(signed), 0))).one()
    return count, _money(total)


def claim_status_counts(session: Session) -> dict[str, int]:
    """277CA acknowledgements per status (accepted, rejected, ...)."""
    rows = session.execute(
        select(ClaimStatusRow.status, func.count()).group_by(ClaimStatusRow.status)
    )
    return {status: count for status, count in rows}


# -- the dashboard -------------------------------------------------------------------------------
# Each is one grouped query on indexed columns: payment_matches(status), outbox(status, ..),
# work_items(state, created_at, id) and (kind, state, ..), claim_acks(claim_id).

_OB = cast(Table, OutboxEntry.__table__)
_WI = cast(Table, WorkItem.__table__)
WAITING = ("pending", "in_flight")


def _open_items() -> Any:
    """Open items, spelled as every (kind, state) pair: kinds are a closed set (a CHECK
    constraint), so the (kind, state, ...) indexes are entered at each open pair and read only
    the open items' entries, never the closed million. ``state IN`` alone would scan them."""
    return and_(_WI.c.kind.in_(WORK_ITEM_KINDS), _WI.c.state.in_(OPEN_STATES))


def acknowledged_totals(session: Session) -> tuple[int, Decimal]:
    """Claims whose newest 277CA verdict is accepted, and their billed total."""
    acks = cast(Table, ClaimAck.__table__)
    newest = (
        select(acks.c.claim_id, func.max(acks.c.claim_status_id).label("status_id"))
        .where(acks.c.claim_id.is_not(None))
        .group_by(acks.c.claim_id)
        .subquery()
    )
    count, total = session.execute(
        select(func.count(), func.sum(ClaimRow.__table__.c.billed_amount))
        .select_from(newest)
        .join(
            acks,
            and_(
                acks.c.claim_id == newest.c.claim_id, acks.c.claim_status_id == newest.c.status_id
            ),
        )
        .join(ClaimRow.__table__, ClaimRow.__table__.c.id == newest.c.claim_id)
        .where(acks.c.state == "accepted")
    ).one()
    return int(count), _money(total)


def matched_totals(session: Session) -> tuple[int, Decimal]:
    """Claim payments matched to a claim (reversals linked to their original included)."""
    matches = cast(Table, PaymentMatch.__table__)
    payments = cast(Table, ClaimPaymentRow.__table__)
    count, total = session.execute(
        select(func.count(), func.sum(payments.c.paid))
        .select_from(matches)
        .join(payments, payments.c.id == matches.c.claim_payment_id)
        .where(matches.c.status.in_(("matched", "reversal_linked")))
    ).one()
    return int(count), _money(total)


def posted_payment_totals(session: Session) -> tuple[int, Decimal]:
    """Claim payments (and reversals) the ERP has taken, and the cash they posted: from the
    (status, kind, cash_amount) index alone (migration 0005), never the rows' entries."""
    count, total = session.execute(
        select(func.count(), func.sum(_OB.c.cash_amount)).where(
            _OB.c.status == "posted", _OB.c.kind.in_(("payment", "reversal"))
        )
    ).one()
    return int(count), _money(total)


@dataclass(frozen=True, slots=True)
class OutboxStatusTotal:
    status: str
    count: int
    amount: Decimal


def outbox_totals(session: Session) -> dict[str, OutboxStatusTotal]:
    """Rows and dollars per outbox status; every status present."""
    found = {s: OutboxStatusTotal(s, 0, ZERO) for s in ("pending", "in_flight", "posted", "dead")}
    rows = session.execute(
        select(_OB.c.status, func.count(), func.sum(_OB.c.amount)).group_by(_OB.c.status)
    )
    for status, count, total in rows:
        found[status] = OutboxStatusTotal(status, int(count), _money(total))
    return found


@dataclass(frozen=True, slots=True)
class OutboxKindTotal:
    status: str
    kind: str
    count: int
    cash: Decimal


def outbox_kind_totals(session: Session) -> list[OutboxKindTotal]:
    """Rows and cash per (status, kind), in one pass over the (status, kind, cash_amount)
    index (migration 0005) and never over the rows: the outbox gauge's counts and the "posted"
    stage both come from it, so a million posted rows are read once, from the index."""
    rows = session.execute(
        select(_OB.c.status, _OB.c.kind, func.count(), func.sum(_OB.c.cash_amount)).group_by(
            _OB.c.status, _OB.c.kind
        )
    )
    return [OutboxKindTotal(st, kind, int(n), _money(cash)) for st, kind, n, cash in rows]


def outbox_status_counts(session: Session) -> dict[str, int]:
    """Rows per outbox status, every status present: counted on the (status, next_attempt_at)
    index, without reading a row (the posted million included)."""
    found = dict.fromkeys(("pending", "in_flight", "posted", "dead"), 0)
    rows = session.execute(select(_OB.c.status, func.count()).group_by(_OB.c.status))
    found.update({status: int(n) for status, n in rows})
    return found


def waiting_amounts(session: Session) -> dict[str, Decimal]:
    """Dollars of the rows still to deliver (pending, in flight): only those rows are read."""
    found = dict.fromkeys(WAITING, ZERO)
    rows = session.execute(
        select(_OB.c.status, func.sum(_OB.c.amount))
        .where(_OB.c.status.in_(WAITING))
        .group_by(_OB.c.status)
    )
    found.update({status: _money(total) for status, total in rows})
    return found


def oldest_waiting_posting(session: Session) -> datetime | None:
    """When the oldest row still waiting for the ERP (pending or in flight) was queued."""
    return session.execute(
        select(func.min(_OB.c.created_at)).where(_OB.c.status.in_(("pending", "in_flight")))
    ).scalar_one_or_none()


def posting_times(session: Session, since: datetime, until: datetime) -> list[datetime]:
    """``posted_at`` of the rows posted in [since, until]: one short window, for a sparkline,
    read from the (status, posted_at) index (migration 0005), never the posted million."""
    rows = session.execute(
        select(_OB.c.posted_at).where(
            _OB.c.status == "posted", _OB.c.posted_at >= since, _OB.c.posted_at <= until
        )
    )
    return [at for (at,) in rows if at is not None]


def adapter_rows(session: Session) -> list[AdapterHealth]:
    return list(session.scalars(select(AdapterHealth).order_by(AdapterHealth.adapter)))


def adapter_row(session: Session, adapter: str) -> AdapterHealth | None:
    """One adapter's breaker row (None: that adapter never ran)."""
    return session.get(AdapterHealth, adapter)


@dataclass(frozen=True, slots=True)
class QueueTotal:
    kind: str
    count: int
    amount: Decimal
    oldest: datetime | None


def open_queue_totals(session: Session) -> list[QueueTotal]:
    """Open (and in-progress) items per kind: count, dollars and the oldest one's age.

    Count and dollars come from the (kind, state, amount) index alone; each queue's oldest
    item is one MIN per (kind, state) pair, which the (kind, state, created_at, id) index
    answers with a single seek, so the cost follows the open items, not the table."""
    found = session.execute(
        select(_WI.c.kind, func.count(), func.sum(_WI.c.amount))
        .where(_open_items())
        .group_by(_WI.c.kind)
    ).all()
    oldest: dict[str, datetime] = {}
    for kind, at in session.execute(_oldest_per_queue()):
        if at is not None and (kind not in oldest or at < oldest[kind]):
            oldest[kind] = at
    return [
        QueueTotal(kind, int(n), _money(total), oldest.get(kind))
        for kind, n, total in sorted(found)
    ]


def _oldest_per_queue() -> Any:
    parts = [
        select(literal(kind).label("kind"), func.min(_WI.c.created_at).label("oldest")).where(
            _WI.c.kind == kind, _WI.c.state == state
        )
        for kind in WORK_ITEM_KINDS
        for state in OPEN_STATES
    ]
    return union_all(*parts)


def open_item_aging(
    session: Session, cutoffs: Sequence[tuple[datetime, str]], oldest_label: str
) -> list[tuple[str, str, int, Decimal]]:
    """(kind, bucket label, count, dollars) of open items. ``cutoffs`` are (created after, label)
    from the newest bucket to the oldest; anything older is ``oldest_label``. The bucket is a
    CASE in a subquery over the (kind, state, created_at, amount) index (migration 0005), which
    holds all it needs for the open items alone. The outer GROUP BY names a column (PostgreSQL
    refuses to group by an expression whose bound cut-offs differ from the select list's)."""
    bucket = case(
        *((_WI.c.created_at > after, label) for after, label in cutoffs), else_=oldest_label
    )
    inner = select(_WI.c.kind, bucket.label("bucket"), _WI.c.amount).where(_open_items()).subquery()
    rows = session.execute(
        select(inner.c.kind, inner.c.bucket, func.count(), func.sum(inner.c.amount)).group_by(
            inner.c.kind, inner.c.bucket
        )
    )
    return [(kind, label, int(n), _money(total)) for kind, label, n, total in rows]


#: source_key prefix of the approval items that ask to write off another open item's money
WRITE_OFF_REQUEST_PREFIX = "write_off:"
_CHUNK = 500  # ids per IN list


def open_write_off_requests(session: Session) -> Decimal:
    """Dollars of the open write-off requests whose origin item is open too: each asks to
    write off money that item already holds, so a total of open items would count it twice.
    A request whose origin was closed some other way (before closing it was refused) is the
    only open item holding its money, and stays counted.

    Two small reads, no JSON and no string-built join (both would differ between SQLite and
    PostgreSQL, and a join on ``'write_off:' || id`` could use no index): the open requests
    through the (kind, state) index (approvals are a small queue), then their actions' items
    by primary key. The action id is the source key's suffix (``write_off:<action id>``)."""
    requests = session.execute(
        select(_WI.c.amount, _WI.c.source_key).where(
            _WI.c.kind == "approval",
            _WI.c.state.in_(OPEN_STATES),
            _WI.c.source_key.like(f"{WRITE_OFF_REQUEST_PREFIX}%"),
        )
    ).all()
    by_action: dict[int, Decimal] = {}
    for amount, key in requests:
        suffix = str(key)[len(WRITE_OFF_REQUEST_PREFIX) :]
        if suffix.isdigit():
            by_action[int(suffix)] = by_action.get(int(suffix), ZERO) + _money(amount)
    actions = cast(Table, TriageAction.__table__)
    origin = _WI.alias("origin")
    wanted, still_open = sorted(by_action), set[int]()
    for start in range(0, len(wanted), _CHUNK):
        still_open.update(
            session.scalars(
                select(actions.c.id)
                .join(origin, origin.c.id == actions.c.work_item_id)
                .where(
                    actions.c.id.in_(wanted[start : start + _CHUNK]),
                    origin.c.state.in_(OPEN_STATES),
                )
            )
        )
    return sum((by_action[a] for a in still_open), ZERO)


def open_item_totals(session: Session) -> tuple[int, Decimal]:
    """Every open item: the dashboard's "in exception" stage."""
    count, total = session.execute(
        select(func.count(), func.sum(_WI.c.amount)).where(_open_items())
    ).one()
    return int(count), _money(total)
