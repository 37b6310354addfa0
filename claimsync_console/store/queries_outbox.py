"""Queries on the outbox: insert-or-get, claiming with leases, and recording each row's fate.

Like the other query modules, nothing here commits. The worker runs each function group in its
own short transaction, and never holds one open while it talks to the ERP.

Claiming is one ``UPDATE .. WHERE id IN (SELECT .. LIMIT n) RETURNING`` statement on both
backends. On PostgreSQL the inner SELECT adds ``FOR UPDATE SKIP LOCKED``, so concurrent workers
take disjoint rows without waiting on each other. On SQLite the statement is a write from its
first step, so it takes the database's single write lock at once (the effect of BEGIN
IMMEDIATE) and two processes queue on the busy timeout instead of claiming the same row.

A row's fate is written conditionally: a failure only moves the row if this worker still holds
its lease (otherwise whoever took it over decides), while a success is recorded whatever the
lease says, because the ERP accepting the idempotency key is a fact that no later decision may
overwrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from claimsync_console.store.models_engine import OutboxEntry, PostingAttempt

PENDING, IN_FLIGHT, POSTED, DEAD = "pending", "in_flight", "posted", "dead"

_T = cast(Table, OutboxEntry.__table__)
_ATTEMPTS = cast(Table, PostingAttempt.__table__)


@dataclass(frozen=True, slots=True)
class ClaimedPosting:
    """What the worker needs from a claimed row, detached from any session."""

    id: int
    idempotency_key: str
    kind: str
    entry: dict[str, Any]
    attempts: int
    amount: Decimal
    next_attempt_at: datetime


def _insert_for(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"no insert-or-ignore for {dialect}")  # pragma: no cover


def insert_outbox_row(
    session: Session,
    *,
    idempotency_key: str,
    kind: str,
    entry: dict[str, Any],
    amount: Decimal,
    cash_amount: Decimal,
    now: datetime,
    remittance_id: int | None = None,
    trace_number: str = "",
    claim_payment_id: int | None = None,
    work_item_id: int | None = None,
) -> tuple[int, bool]:
    """(id, created). A key that is already queued returns the existing row untouched: the
    first write wins, so a reprocessing pass after a rules edit cannot rewrite a posting that
    may already have reached the ERP."""
    row = {
        "idempotency_key": idempotency_key,
        "kind": kind,
        "entry": entry,
        "amount": amount,
        "cash_amount": cash_amount,
        "remittance_id": remittance_id,
        "trace_number": trace_number,
        "claim_payment_id": claim_payment_id,
        "work_item_id": work_item_id,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "created_at": now,
    }
    statement = (
        _insert_for(session)(_T)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_T.c.id)
    )
    created = session.execute(statement).scalar_one_or_none()
    if created is not None:
        return int(created), True
    existing = session.execute(
        select(_T.c.id).where(_T.c.idempotency_key == idempotency_key)
    ).scalar_one()
    return int(existing), False


def claim_due(
    session: Session,
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    due_by: datetime | None = None,
) -> list[ClaimedPosting]:
    """Lease up to ``limit`` rows: pending ones due by ``due_by`` (default ``now``) and
    in-flight ones whose lease has expired (their worker died). Oldest due first."""
    due = or_(
        and_(_T.c.status == PENDING, _T.c.next_attempt_at <= (due_by or now)),
        and_(_T.c.status == IN_FLIGHT, _T.c.lease_expires_at <= now),
    )
    pick = select(_T.c.id).where(due).order_by(_T.c.next_attempt_at, _T.c.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    statement = (
        update(_T)
        .where(_T.c.id.in_(pick))
        .values(status=IN_FLIGHT, lease_owner=worker_id, lease_expires_at=now + lease)
        .returning(
            _T.c.id,
            _T.c.idempotency_key,
            _T.c.kind,
            _T.c.entry,
            _T.c.attempts,
            _T.c.amount,
            _T.c.next_attempt_at,
        )
    )
    claimed = [ClaimedPosting(*row) for row in session.execute(statement)]
    return sorted(claimed, key=lambda c: (c.next_attempt_at, c.id))


def release(session: Session, ids: Iterable[int], *, worker_id: str) -> int:
    """Hand unattempted rows back (the circuit opened mid-batch): no attempt is counted and
    their due time is unchanged, so they go first when the ERP is back."""
    wanted = list(ids)
    if not wanted:
        return 0
    return _rowcount(
        session.execute(
            update(_T)
            .where(_T.c.id.in_(wanted), _T.c.status == IN_FLIGHT, _T.c.lease_owner == worker_id)
            .values(status=PENDING, lease_owner=None, lease_expires_at=None)
        )
    )


def record_attempt(
    session: Session,
    outbox_id: int,
    *,
    outcome: str,
    error: str,
    latency_ms: int | None,
    now: datetime,
) -> int:
    """Append to the row's history and count the attempt; returns the new attempt count.
    Runs first in the outcome transaction, so it also takes the row's lock."""
    attempts = session.execute(
        update(_T)
        .where(_T.c.id == outbox_id)
        .values(attempts=_T.c.attempts + 1)
        .returning(_T.c.attempts)
    ).scalar_one()
    session.add(
        PostingAttempt(
            outbox_id=outbox_id,
            attempted_at=now,
            outcome=outcome,
            error=error,
            latency_ms=latency_ms,
        )
    )
    session.flush()
    return int(attempts)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One row's attempt in a batched outcome transaction (see ``record_attempts``)."""

    outbox_id: int
    outcome: str
    error: str
    latency_ms: int | None


def record_attempts(
    session: Session, records: Sequence[AttemptRecord], *, now: datetime
) -> dict[int, tuple[int, str]]:
    """``record_attempt`` for a whole batch in two statements; returns each row's new attempt
    count and its status. Like the single form it runs first in the outcome transaction, so
    it takes the rows' locks (and SQLite's write lock): the statuses it reads stay true until
    the commit, which is what lets ``mark_posted_many`` skip its own check."""
    if not records:
        return {}
    counts = {
        int(row_id): (int(attempts), str(status))
        for row_id, attempts, status in session.execute(
            update(_T)
            .where(_T.c.id.in_([r.outbox_id for r in records]))
            .values(attempts=_T.c.attempts + 1)
            .returning(_T.c.id, _T.c.attempts, _T.c.status)
        )
    }
    session.execute(  # one Core executemany: no ORM bookkeeping, no ids read back
        insert(_ATTEMPTS),
        [
            {
                "outbox_id": r.outbox_id,
                "attempted_at": now,
                "outcome": r.outcome,
                "error": r.error,
                "latency_ms": r.latency_ms,
            }
            for r in records
        ],
    )
    return counts


def mark_posted_many(session: Session, references: Mapping[int, str], *, now: datetime) -> int:
    """``mark_posted`` for a batch, one executemany; pass only rows ``record_attempts`` read
    as not posted in this transaction (the status guard stays, for safety). Returns the count
    moved."""
    if not references:
        return 0
    result = session.execute(
        update(_T)
        .where(_T.c.id == bindparam("b_id"), _T.c.status != POSTED)
        .values(
            status=POSTED,
            erp_reference=bindparam("b_ref"),
            posted_at=now,
            lease_owner=None,
            lease_expires_at=None,
            last_error="",
        ),
        [{"b_id": row_id, "b_ref": ref} for row_id, ref in references.items()],
    )
    return _rowcount(result)


def mark_posted(session: Session, outbox_id: int, *, erp_reference: str, now: datetime) -> bool:
    """Record the ERP's acceptance whoever holds the lease; False if it was already posted."""
    return (
        _rowcount(
            session.execute(
                update(_T)
                .where(_T.c.id == outbox_id, _T.c.status != POSTED)
                .values(
                    status=POSTED,
                    erp_reference=erp_reference,
                    posted_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    last_error="",
                )
            )
        )
        == 1
    )


def mark_retry(
    session: Session,
    outbox_id: int,
    *,
    worker_id: str,
    error: str,
    next_attempt_at: datetime,
) -> bool:
    """Back to pending until ``next_attempt_at``; False if this worker lost the lease."""
    return _move_owned(
        session,
        outbox_id,
        worker_id,
        status=PENDING,
        last_error=error,
        next_attempt_at=next_attempt_at,
    )


def mark_dead(session: Session, outbox_id: int, *, worker_id: str, error: str) -> bool:
    """No more automatic attempts; False if this worker lost the lease."""
    return _move_owned(session, outbox_id, worker_id, status=DEAD, last_error=error)


def _move_owned(session: Session, outbox_id: int, worker_id: str, **values: Any) -> bool:
    return (
        _rowcount(
            session.execute(
                update(_T)
                .where(
                    _T.c.id == outbox_id, _T.c.status == IN_FLIGHT, _T.c.lease_owner == worker_id
                )
                .values(lease_owner=None, lease_expires_at=None, **values)
            )
        )
        == 1
    )


def requeue(session: Session, ids: Iterable[int], *, now: datetime) -> int:
    """Dead rows back to pending with a fresh attempt budget (the triage ``retry`` action);
    their history stays in ``posting_attempts``."""
    wanted = list(ids)
    if not wanted:
        return 0
    return _rowcount(
        session.execute(
            update(_T)
            .where(_T.c.id.in_(wanted), _T.c.status == DEAD)
            .values(status=PENDING, attempts=0, next_attempt_at=now)
        )
    )


def attempt_history(session: Session, outbox_id: int) -> Sequence[PostingAttempt]:
    return session.scalars(
        select(PostingAttempt)
        .where(PostingAttempt.outbox_id == outbox_id)
        .order_by(PostingAttempt.attempted_at, PostingAttempt.id)
    ).all()


def last_failed_attempt(session: Session) -> str:
    """The error of the latest failed posting attempt, any row ("" when none): what ``sync
    run`` names when the ERP took nothing. The newest id is the newest attempt."""
    error = session.scalar(
        select(PostingAttempt.error)
        .where(PostingAttempt.outcome != "posted")
        .order_by(PostingAttempt.id.desc())
        .limit(1)
    )
    return error or ""


def get_outbox_row(session: Session, outbox_id: int) -> OutboxEntry | None:
    return session.get(OutboxEntry, outbox_id)


def get_outbox_by_key(session: Session, idempotency_key: str) -> OutboxEntry | None:
    return session.scalars(
        select(OutboxEntry).where(OutboxEntry.idempotency_key == idempotency_key)
    ).one_or_none()


def status_counts(session: Session) -> dict[str, int]:
    """Rows per status, every status present (zero when empty)."""
    counts = dict.fromkeys((PENDING, IN_FLIGHT, POSTED, DEAD), 0)
    for status, count in session.execute(
        select(_T.c.status, func.count(_T.c.id)).group_by(_T.c.status)
    ):
        counts[status] = int(count)
    return counts


def next_wakeup(session: Session) -> datetime | None:
    """When the next row becomes claimable: the earliest pending due time or in-flight lease
    expiry. None when nothing is waiting, which is how a full drain knows it is done."""
    pending = session.execute(
        select(func.min(_T.c.next_attempt_at)).where(_T.c.status == PENDING)
    ).scalar_one_or_none()
    leased = session.execute(
        select(func.min(_T.c.lease_expires_at)).where(_T.c.status == IN_FLIGHT)
    ).scalar_one_or_none()
    times = [t for t in (pending, leased) if t is not None]
    return min(times) if times else None


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)
