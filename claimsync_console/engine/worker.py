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

When the adapter declares ``supports_batch`` the unit is a batch instead of a row: one lease
transaction, one ``post_each`` call, one outcome transaction for every row of it (see
``engine.worker_batch``); the argument above holds unchanged.

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
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine.breaker import BreakerPolicy
from claimsync_console.engine.retry import RetryPolicy
from claimsync_console.engine.worker_rows import EVENTS, DrainReport, EventHook, Worker
from claimsync_console.erp.base import ErpAdapter

__all__ = ["EVENTS", "DrainReport", "EventHook", "default_worker_id", "drain", "run", "utcnow"]

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def default_worker_id(prefix: str = "worker") -> str:
    """Unique per live process, so a lease names who holds a row (shown when it is stuck)."""
    return f"{prefix}@{socket.gethostname()}:{os.getpid()}"


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
    worker = Worker(
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
