"""The outbox worker: delivers queued postings to the ERP, safely under crashes and concurrency.

Per row, three steps, never inside one transaction:

1. **claim** (short transaction): lease a batch of due rows to this worker;
2. **post** (no transaction): ``adapter.post_entry``; the ERP deduplicates on the idempotency
   key, so a row whose post succeeded but whose outcome was lost is simply posted again and
   answers ``created=False`` with the same reference;
3. **record** (short transaction): the attempt, the row's new status (posted, pending again
   after a backoff, or dead with a ``dead_letter`` work item), and the circuit breaker.

A kill -9 between any two steps leaves the row leased; the lease expires and another worker
(or the same one restarted) takes it over, and step 2's deduplication makes that safe. That is
the whole crash-safety argument, and ``tests/engine/test_crash.py`` checks it by killing a
worker process at each of these points.

``drain`` is the library call behind ``claimsync sync run --once``; ``run`` is the loop behind
``claimsync sync run`` and the console's background worker.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import ZERO
from claimsync_console.engine import breaker
from claimsync_console.engine.breaker import BreakerPolicy
from claimsync_console.engine.outbox import EntryFormatError, entry_from_json
from claimsync_console.engine.retry import RetryPolicy
from claimsync_console.engine.workitems import open_dead_letter
from claimsync_console.erp.base import ErpAdapter, ErpError, PostingResult
from claimsync_console.store import queries_outbox as q

logger = logging.getLogger(__name__)

#: ``on_event(name, outbox_id)`` names, in the order they happen to one row.
EVENTS = ("claimed", "calling", "called", "recorded")

EventHook = Callable[[str, int], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


def default_worker_id(prefix: str = "worker") -> str:
    """Unique per live process, so a lease names who holds a row (shown when it is stuck)."""
    return f"{prefix}@{socket.gethostname()}:{os.getpid()}"


@dataclass
class DrainReport:
    """What one drain (or a whole ``run``) did. ``duplicates``: posts the ERP had already seen
    (a retry after a crash or a lost lease); they count in ``posted`` as well."""

    claimed: int = 0
    posted: int = 0
    duplicates: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0
    lost_leases: int = 0
    posted_amount: Decimal = ZERO
    breaker_blocked: bool = False
    breaker_retry_at: datetime | None = None
    next_wakeup: datetime | None = None
    dead_letter_ids: list[int] = field(default_factory=list)

    def merge(self, other: DrainReport) -> None:
        for name in ("claimed", "posted", "duplicates", "retried", "dead", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.lost_leases += other.lost_leases
        self.posted_amount += other.posted_amount
        self.breaker_blocked = other.breaker_blocked
        self.breaker_retry_at = other.breaker_retry_at
        self.next_wakeup = other.next_wakeup
        self.dead_letter_ids.extend(other.dead_letter_ids)


@dataclass(frozen=True)
class _Outcome:
    """What the ERP said about one row: a result, or an error classified for retry."""

    result: PostingResult | None = None
    error: str = ""
    retryable: bool = False
    retry_after: float | None = None
    latency_ms: float | None = None  # None when the adapter was never called


@dataclass
class _Worker:
    sessions: sessionmaker[Session]
    adapter: ErpAdapter
    worker_id: str
    batch_size: int
    max_attempts: int
    now_fn: Callable[[], datetime]
    retry_policy: RetryPolicy
    breaker_policy: BreakerPolicy
    lease: timedelta
    rng: random.Random | None
    on_event: EventHook | None
    stop_event: threading.Event | None

    @property
    def name(self) -> str:
        return self.adapter.name

    def stopped(self) -> bool:
        return self.stop_event is not None and self.stop_event.is_set()

    def emit(self, event: str, outbox_id: int) -> None:
        if self.on_event is not None:
            self.on_event(event, outbox_id)

    # ------------------------------------------------------------------ one pass

    def drain_pass(self, report: DrainReport, due_by: datetime) -> None:
        """Post every row due by ``due_by`` (batch after batch) until none is left, the
        circuit is open, or the stop event is set."""
        while not self.stopped():
            now = self.now_fn()
            with self.sessions.begin() as session:
                admission = breaker.admit(session, self.name, self.breaker_policy, now)
            if not admission.allowed:
                report.breaker_blocked, report.breaker_retry_at = True, admission.retry_at
                return
            report.breaker_blocked, report.breaker_retry_at = False, None
            with self.sessions.begin() as session:
                batch = q.claim_due(
                    session,
                    worker_id=self.worker_id,
                    now=now,
                    lease=self.lease,
                    limit=1 if admission.probe else self.batch_size,
                    due_by=due_by,
                )
            if not batch:
                if admission.probe:
                    with self.sessions.begin() as session:
                        breaker.release_probe(session, self.name, self.now_fn())
                return
            report.claimed += len(batch)
            if not self.post_batch(batch, report):
                return

    def post_batch(self, batch: list[q.ClaimedPosting], report: DrainReport) -> bool:
        """False when the batch was cut short (circuit opened, or asked to stop)."""
        for claimed in batch:
            self.emit("claimed", claimed.id)
        for index, claimed in enumerate(batch):
            if self.stopped():
                self.release([c.id for c in batch[index:]], report)
                return False
            if self.post_one(claimed, report) == breaker.OPEN:
                self.release([c.id for c in batch[index + 1 :]], report)
                report.breaker_blocked = True
                report.breaker_retry_at = self.now_fn() + self.breaker_policy.cool_down
                return False
        return True

    def release(self, ids: list[int], report: DrainReport) -> None:
        if ids:
            with self.sessions.begin() as session:
                report.released += q.release(session, ids, worker_id=self.worker_id)

    # ------------------------------------------------------------------ one row

    def post_one(self, claimed: q.ClaimedPosting, report: DrainReport) -> str:
        """Post and record one row; returns the circuit state afterwards."""
        outcome = self.call_erp(claimed)
        self.emit("called", claimed.id)
        with self.sessions.begin() as session:
            state = self.record(session, claimed, outcome, report)
        self.emit("recorded", claimed.id)
        return state

    def call_erp(self, claimed: q.ClaimedPosting) -> _Outcome:
        try:
            entry = entry_from_json(claimed.entry)
        except EntryFormatError as exc:
            return _Outcome(error=f"[unreadable_entry] {exc}")
        self.emit("calling", claimed.id)
        started = time.perf_counter()
        try:
            result = self.adapter.post_entry(entry)
        except ErpError as exc:
            return _Outcome(
                error=f"[{exc.code}] {exc.message}",
                retryable=exc.retryable,
                retry_after=exc.retry_after,
                latency_ms=_ms_since(started),
            )
        except Exception as exc:  # an adapter bug or a raw network error: assume transient
            return _Outcome(
                error=f"[unexpected] {type(exc).__name__}: {exc}",
                retryable=True,
                latency_ms=_ms_since(started),
            )
        return _Outcome(result=result, latency_ms=_ms_since(started))

    def record(
        self, session: Session, claimed: q.ClaimedPosting, outcome: _Outcome, report: DrainReport
    ) -> str:
        now = self.now_fn()
        kind = "posted" if outcome.result else "transient" if outcome.retryable else "permanent"
        attempts = q.record_attempt(
            session,
            claimed.id,
            outcome=kind,
            error=outcome.error,
            latency_ms=None if outcome.latency_ms is None else round(outcome.latency_ms),
            now=now,
        )
        if outcome.result is not None:
            return self.record_posted(session, claimed, outcome, now, report)
        if outcome.retryable and attempts < self.max_attempts:
            self.record_retry(session, claimed, outcome, attempts, now, report)
        else:
            self.record_dead(session, claimed, outcome.error, now, report)
        if outcome.latency_ms is None:  # never reached the ERP: no news about its health
            return breaker.CLOSED
        if outcome.retryable:
            return breaker.record_failure(
                session, self.name, self.breaker_policy, now, latency_ms=outcome.latency_ms
            )
        return breaker.record_success(
            session, self.name, self.breaker_policy, now,
            latency_ms=outcome.latency_ms, posted=False,
        )  # fmt: skip

    def record_posted(
        self,
        session: Session,
        claimed: q.ClaimedPosting,
        outcome: _Outcome,
        now: datetime,
        report: DrainReport,
    ) -> str:
        assert outcome.result is not None
        if q.mark_posted(session, claimed.id, erp_reference=outcome.result.erp_reference, now=now):
            report.posted += 1
            report.posted_amount += claimed.amount
        if not outcome.result.created:
            report.duplicates += 1
        return breaker.record_success(
            session, self.name, self.breaker_policy, now, latency_ms=outcome.latency_ms
        )

    def record_retry(
        self,
        session: Session,
        claimed: q.ClaimedPosting,
        outcome: _Outcome,
        attempts: int,
        now: datetime,
        report: DrainReport,
    ) -> None:
        delay = self.retry_policy.delay(attempts, retry_after=outcome.retry_after, rng=self.rng)
        moved = q.mark_retry(
            session,
            claimed.id,
            worker_id=self.worker_id,
            error=outcome.error,
            next_attempt_at=now + delay,
        )
        if moved:
            report.retried += 1
        else:
            report.lost_leases += 1

    def record_dead(
        self,
        session: Session,
        claimed: q.ClaimedPosting,
        error: str,
        now: datetime,
        report: DrainReport,
    ) -> None:
        if not q.mark_dead(session, claimed.id, worker_id=self.worker_id, error=error):
            report.lost_leases += 1
            return
        row = q.get_outbox_row(session, claimed.id)
        assert row is not None
        opened = open_dead_letter(session, row, q.attempt_history(session, claimed.id), now=now)
        report.dead += 1
        report.dead_letter_ids.append(opened.id)
        logger.warning(
            "outbox %s (%s) is a dead letter after %s attempt(s): work item %s",
            claimed.id, claimed.idempotency_key, row.attempts, opened.id,
        )  # fmt: skip

    def wakeup(self) -> datetime | None:
        with self.sessions.begin() as session:
            return q.next_wakeup(session)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def drain(
    session_factory: sessionmaker[Session],
    adapter: ErpAdapter,
    *,
    worker_id: str,
    batch_size: int = 50,
    max_attempts: int = 8,
    now_fn: Callable[[], datetime] = utcnow,
    sleep_fn: Callable[[float], None] = time.sleep,
    once: bool = True,
    retry_policy: RetryPolicy = RetryPolicy(),
    breaker_policy: BreakerPolicy = BreakerPolicy(),
    lease: timedelta = timedelta(minutes=5),
    rng: random.Random | None = None,
    on_event: EventHook | None = None,
    stop_event: threading.Event | None = None,
) -> DrainReport:
    """Deliver the outbox through ``adapter``.

    ``once=True``: every row due now is attempted at most once (rows that fail are scheduled
    for later, not retried in a tight loop), then return. ``once=False``: keep going, sleeping
    with ``sleep_fn`` until the next row is due or the circuit may probe, until no row is
    pending or in flight; every row then ends posted or dead. Each row's fate is committed as
    soon as it is known, so stopping (or dying) at any point loses nothing."""
    if batch_size < 1 or max_attempts < 1:
        raise ValueError("batch_size and max_attempts must be at least 1")
    worker = _Worker(
        session_factory, adapter, worker_id, batch_size, max_attempts, now_fn,
        retry_policy, breaker_policy, lease, rng, on_event, stop_event,
    )  # fmt: skip
    report = DrainReport()
    while True:
        worker.drain_pass(report, due_by=now_fn())
        report.next_wakeup = worker.wakeup()
        if once or worker.stopped() or report.next_wakeup is None:
            return report
        wake = report.next_wakeup
        if report.breaker_blocked and report.breaker_retry_at is not None:
            wake = max(wake, report.breaker_retry_at)
        sleep_fn(max(0.01, (wake - now_fn()).total_seconds()))


def run(
    session_factory: sessionmaker[Session],
    adapter: ErpAdapter,
    *,
    worker_id: str,
    stop_event: threading.Event,
    poll_interval: float = 1.0,
    batch_size: int = 50,
    max_attempts: int = 8,
    now_fn: Callable[[], datetime] = utcnow,
    retry_policy: RetryPolicy = RetryPolicy(),
    breaker_policy: BreakerPolicy = BreakerPolicy(),
    lease: timedelta = timedelta(minutes=5),
    rng: random.Random | None = None,
    on_event: EventHook | None = None,
    on_report: Callable[[DrainReport], None] | None = None,
) -> DrainReport:
    """Drain, wait, repeat until ``stop_event`` is set; returns the totals. A store error
    (database restarting, file locked too long) is logged and retried after ``poll_interval``
    rather than ending the loop: rows it interrupted stay leased and are taken over later."""
    total = DrainReport()
    while not stop_event.is_set():
        try:
            report = drain(
                session_factory, adapter, worker_id=worker_id, batch_size=batch_size,
                max_attempts=max_attempts, now_fn=now_fn, once=True, retry_policy=retry_policy,
                breaker_policy=breaker_policy, lease=lease, rng=rng, on_event=on_event,
                stop_event=stop_event,
            )  # fmt: skip
        except SQLAlchemyError as exc:
            logger.warning("outbox worker %s: store error, retrying: %s", worker_id, exc)
            stop_event.wait(poll_interval)
            continue
        total.merge(report)
        if on_report is not None:
            on_report(report)
        stop_event.wait(_idle_wait(report, poll_interval, now_fn()))
    return total


def _idle_wait(report: DrainReport, poll_interval: float, now: datetime) -> float:
    """Sleep until the next row is due, but never longer than ``poll_interval`` (new rows
    arrive without notice) nor shorter than a tick (no busy loop)."""
    if report.next_wakeup is None:
        return poll_interval
    until = (report.next_wakeup - now).total_seconds()
    return min(poll_interval, max(until, 0.05))
