"""The circuit breaker per ERP adapter, kept in ``adapter_health`` so every worker shares it.

closed -> open after ``failure_threshold`` consecutive transient failures. While open, no worker
calls the adapter: rows stay pending and keep their attempt budget, because an ERP that is down
says nothing about the postings. After ``cool_down`` one worker is let through with a single
row (half-open); its success closes the circuit, its failure re-opens it for another cool-down.
A probe whose worker died is forgotten after one cool-down, so the circuit cannot stick in
half-open.

A permanent error counts as an answer, not a failure: the ERP was up and refused one entry,
which must not stop every other posting. It resets the failure streak like a success does,
but only a posting sets ``last_success_at``.

Every transition reads and writes the row under a lock: ``SELECT .. FOR UPDATE`` on PostgreSQL,
and on SQLite the insert-if-missing that starts each transaction is a write, which takes the
database's write lock before the row is read. Nothing here commits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from claimsync_console.store.models_engine import AdapterHealth

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    cool_down: timedelta = timedelta(seconds=30)
    latency_window: int = 200  # recent samples kept for p50/p95

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.latency_window < 1:
            raise ValueError("failure_threshold and latency_window must be at least 1")


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a worker may call the adapter now. ``probe``: it may post exactly one row.
    ``retry_at``: when a refused worker should ask again."""

    allowed: bool
    probe: bool
    state: str
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """What the dashboard and ``claimsync status`` show for one adapter."""

    adapter: str
    circuit_state: str
    consecutive_failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    opened_at: datetime | None
    p50_ms: int | None
    p95_ms: int | None
    samples: int


def admit(session: Session, adapter: str, policy: BreakerPolicy, now: datetime) -> Admission:
    """Ask before claiming rows; moving open -> half-open hands the probe to this caller."""
    row = _locked(session, adapter, now)
    if row.circuit_state == CLOSED:
        return Admission(True, False, CLOSED)
    since = row.opened_at if row.circuit_state == OPEN else row.updated_at
    ready_at = (since or now) + policy.cool_down
    if now < ready_at:
        return Admission(False, False, row.circuit_state, ready_at)
    row.circuit_state = HALF_OPEN
    row.updated_at = now  # the probe's start: another probe is allowed one cool-down later
    session.flush()
    return Admission(True, True, HALF_OPEN)


def release_probe(session: Session, adapter: str, now: datetime) -> None:
    """The probe found nothing to post: back to open (cool-down already served), so the next
    drain probes at once instead of waiting out the abandoned probe."""
    row = _locked(session, adapter, now)
    if row.circuit_state == HALF_OPEN:
        row.circuit_state = OPEN
        row.updated_at = now
        session.flush()


def record_success(
    session: Session,
    adapter: str,
    policy: BreakerPolicy,
    now: datetime,
    *,
    latency_ms: float | None,
    posted: bool = True,
) -> str:
    """The ERP answered (``posted=False``: it answered with a refusal). Closes the circuit."""
    row = _locked(session, adapter, now)
    row.circuit_state = CLOSED
    row.consecutive_failures = 0
    row.opened_at = None
    if posted:
        row.last_success_at = now
    _add_latency(row, latency_ms, policy)
    row.updated_at = now
    session.flush()
    return CLOSED


def record_failure(
    session: Session,
    adapter: str,
    policy: BreakerPolicy,
    now: datetime,
    *,
    latency_ms: float | None,
) -> str:
    """A transient failure; returns the state after it (OPEN tells the worker to stop)."""
    row = _locked(session, adapter, now)
    row.consecutive_failures += 1
    row.last_failure_at = now
    tripped = row.circuit_state == CLOSED and row.consecutive_failures >= policy.failure_threshold
    if row.circuit_state == HALF_OPEN or tripped:
        row.circuit_state = OPEN
        row.opened_at = now
    _add_latency(row, latency_ms, policy)
    row.updated_at = now
    session.flush()
    return row.circuit_state


def record_call(
    session: Session,
    adapter: str,
    policy: BreakerPolicy,
    now: datetime,
    *,
    latency_ms: float | None,
    posted: bool,
    failed: bool,
) -> str:
    """One ERP call's news, whether it carried one row or a batch: any posting is a success;
    else a transient failure is ONE failure (a failed batch of 100 is one failed call, not 100
    strikes); else the ERP answered with refusals. One latency sample per call, too."""
    if posted or not failed:
        return record_success(session, adapter, policy, now, latency_ms=latency_ms, posted=posted)
    return record_failure(session, adapter, policy, now, latency_ms=latency_ms)


def breaker_status(session: Session, adapter: str) -> BreakerStatus | None:
    row = session.get(AdapterHealth, adapter)
    return None if row is None else status_of(row)


def status_of(row: AdapterHealth) -> BreakerStatus:
    """One reading of a health row, shared by the worker's checks and the status board."""
    return BreakerStatus(
        adapter=row.adapter,
        circuit_state=row.circuit_state,
        consecutive_failures=row.consecutive_failures,
        last_success_at=row.last_success_at,
        last_failure_at=row.last_failure_at,
        opened_at=row.opened_at,
        p50_ms=row.p50_ms,
        p95_ms=row.p95_ms,
        samples=len(row.latency_samples or []),
    )


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: always one of the samples, never an interpolation."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _add_latency(row: AdapterHealth, latency_ms: float | None, policy: BreakerPolicy) -> None:
    if latency_ms is None:
        return
    samples = [float(s) for s in (row.latency_samples or [])]
    samples.append(round(max(latency_ms, 0.0), 3))
    samples = samples[-policy.latency_window :]
    row.latency_samples = samples  # a new list, so the JSON column is seen as changed
    row.p50_ms = round(percentile(samples, 0.50))
    row.p95_ms = round(percentile(samples, 0.95))


def _locked(session: Session, adapter: str, now: datetime) -> AdapterHealth:
    """The adapter's row, created if missing, locked for the rest of the transaction."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(AdapterHealth)
        .values(
            adapter=adapter,
            circuit_state=CLOSED,
            consecutive_failures=0,
            latency_samples=[],
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["adapter"])
    )
    return session.scalars(
        select(AdapterHealth)
        .where(AdapterHealth.adapter == adapter)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
