"""One worker's delivery of leased outbox rows: claim, post, record (split from ``engine.worker``).

:class:`Worker` holds the per-row mechanics the module docstring of ``engine.worker`` argues are
crash-safe: a short transaction to lease rows, the ERP call outside any transaction, and a short
transaction recording the attempt, the row's new status and the circuit breaker. ``drain`` and
``run`` in ``engine.worker`` drive it; :class:`DrainReport` is what they return.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import ZERO
from claimsync_console.engine import breaker
from claimsync_console.engine.breaker import BreakerPolicy
from claimsync_console.engine.outbox import EntryFormatError, entry_from_json
from claimsync_console.engine.retry import RetryPolicy
from claimsync_console.engine.worker_batch import post_together
from claimsync_console.engine.workitems import open_dead_letter
from claimsync_console.erp.base import ErpAdapter, ErpError, PostingResult
from claimsync_console.store import queries_outbox as q

logger = logging.getLogger("claimsync_console.engine.worker")

#: ``on_event(name, outbox_id)`` names, in the order they happen to one row.
EVENTS = ("claimed", "calling", "called", "recorded")

EventHook = Callable[[str, int], None]


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
class Outcome:
    """What the ERP said about one row: a result, or an error classified for retry."""

    result: PostingResult | None = None
    error: str = ""
    retryable: bool = False
    retry_after: float | None = None
    latency_ms: float | None = None  # None when the adapter was never called

    @property
    def kind(self) -> str:
        """The attempt's outcome as ``posting_attempts`` stores it."""
        return "posted" if self.result else "transient" if self.retryable else "permanent"


@dataclass
class Worker:
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

    @property
    def batching(self) -> bool:
        """One ``post_each`` call and one outcome transaction per claimed batch (see
        ``engine.worker_batch``) when the adapter says it takes batches."""
        return self.adapter.capabilities.supports_batch

    def claim_limit(self, probe: bool) -> int:
        if probe:
            return 1
        if self.batching:
            return min(self.batch_size, max(1, self.adapter.capabilities.max_batch_size))
        return self.batch_size

    def emit(self, event: str, outbox_id: int) -> None:
        if self.on_event is not None:
            self.on_event(event, outbox_id)

    # ------------------------------------------------------------------ one pass

    def drain_pass(self, report: DrainReport, due_by: datetime) -> None:
        """Post every row due by ``due_by`` (batch after batch) until none is left, the
        circuit is open, or the stop event is set."""
        while not self.stopped():
            now = self.now_fn()
            with self.sessions.begin() as session:  # admission and lease in one transaction
                admission = breaker.admit(session, self.name, self.breaker_policy, now)
                batch = self.claim(session, admission, now, due_by) if admission.allowed else []
            if not admission.allowed:
                report.breaker_blocked, report.breaker_retry_at = True, admission.retry_at
                return
            report.breaker_blocked, report.breaker_retry_at = False, None
            if not batch:
                return
            report.claimed += len(batch)
            if not self.post_batch(batch, report):
                return

    def claim(
        self, session: Session, admission: breaker.Admission, now: datetime, due_by: datetime
    ) -> list[q.ClaimedPosting]:
        """Lease the next batch; a probe that finds nothing hands the circuit back at once."""
        batch = q.claim_due(
            session,
            worker_id=self.worker_id,
            now=now,
            lease=self.lease,
            limit=self.claim_limit(admission.probe),
            due_by=due_by,
        )
        if admission.probe and not batch:
            breaker.release_probe(session, self.name, now)
        return batch

    def post_batch(self, batch: list[q.ClaimedPosting], report: DrainReport) -> bool:
        """False when the batch was cut short (circuit opened, or asked to stop)."""
        if self.batching:
            return post_together(self, batch, report)
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

    def call_erp(self, claimed: q.ClaimedPosting) -> Outcome:
        try:
            entry = entry_from_json(claimed.entry)
        except EntryFormatError as exc:
            return Outcome(error=f"[unreadable_entry] {exc}")
        self.emit("calling", claimed.id)
        started = time.perf_counter()
        try:
            result = self.adapter.post_entry(entry)
        except ErpError as exc:
            return Outcome(
                error=f"[{exc.code}] {exc.message}",
                retryable=exc.retryable,
                retry_after=exc.retry_after,
                latency_ms=_ms_since(started),
            )
        except Exception as exc:  # an adapter bug or a raw network error: assume transient
            return Outcome(
                error=f"[unexpected] {type(exc).__name__}: {exc}",
                retryable=True,
                latency_ms=_ms_since(started),
            )
        return Outcome(result=result, latency_ms=_ms_since(started))

    def record(
        self, session: Session, claimed: q.ClaimedPosting, outcome: Outcome, report: DrainReport
    ) -> str:
        now = self.now_fn()
        attempts = q.record_attempt(
            session,
            claimed.id,
            outcome=outcome.kind,
            error=outcome.error,
            latency_ms=None if outcome.latency_ms is None else round(outcome.latency_ms),
            now=now,
        )
        if outcome.result is not None:
            self.record_posted(session, claimed, outcome, now, report)
        else:
            self.record_failed(session, claimed, outcome, attempts, now, report)
        return self.record_breaker(session, [outcome], now)

    def record_failed(
        self,
        session: Session,
        claimed: q.ClaimedPosting,
        outcome: Outcome,
        attempts: int,
        now: datetime,
        report: DrainReport,
    ) -> None:
        if outcome.retryable and attempts < self.max_attempts:
            self.record_retry(session, claimed, outcome, attempts, now, report)
        else:
            self.record_dead(session, claimed, outcome.error, now, report)

    def record_breaker(self, session: Session, outcomes: list[Outcome], now: datetime) -> str:
        """One ERP call's news for the circuit, whether it carried one row or a batch."""
        called = [o for o in outcomes if o.latency_ms is not None]
        if not called:  # never reached the ERP: no news about its health
            return breaker.CLOSED
        return breaker.record_call(
            session, self.name, self.breaker_policy, now,
            latency_ms=max(o.latency_ms or 0.0 for o in called),
            posted=any(o.result is not None for o in called),
            failed=any(o.retryable for o in called),
        )  # fmt: skip

    def record_posted(
        self,
        session: Session,
        claimed: q.ClaimedPosting,
        outcome: Outcome,
        now: datetime,
        report: DrainReport,
    ) -> None:
        assert outcome.result is not None
        if q.mark_posted(session, claimed.id, erp_reference=outcome.result.erp_reference, now=now):
            report.posted += 1
            report.posted_amount += claimed.amount
        if not outcome.result.created:
            report.duplicates += 1

    def record_retry(
        self,
        session: Session,
        claimed: q.ClaimedPosting,
        outcome: Outcome,
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
