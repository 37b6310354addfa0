"""Batched posting: the outbox worker through the REST adapter to the real sandbox ERP.

The sandbox is a real HTTP server on loopback over its own SQLite ledger; the store is SQLite
and PostgreSQL (the fixtures of ``test_outbox``). The REST adapter declares ``supports_batch``,
so each claimed batch is one ``post_each`` call and one outcome transaction. Time is an
injected clock, so backoffs cost nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.engine import breaker
from claimsync_console.engine.breaker import BreakerPolicy
from claimsync_console.engine.outbox import enqueue_entry
from claimsync_console.engine.retry import RetryPolicy
from claimsync_console.engine.worker import DrainReport, drain
from claimsync_console.erp.base import PostingResult, UnknownAccountError
from claimsync_console.erp.rest import RestAdapter
from claimsync_console.erp.sandbox import SandboxLedger, SandboxServer, open_sandbox_ledger
from claimsync_console.erp.sandbox_faults import FaultPlan
from claimsync_console.store.models_engine import OutboxEntry, PostingAttempt, WorkItem
from tests.engine import test_outbox
from tests.engine.crash_worker import ENTRY_YEAR, sample_entry

migrated_store = test_outbox.migrated_store
db_sessions = test_outbox.db_sessions

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
RETRY = RetryPolicy(base_seconds=10, cap_seconds=100, floor_seconds=1)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[SandboxServer, RestAdapter]]:
    ledger = open_sandbox_ledger(tmp_path / "erp.sqlite3", year=ENTRY_YEAR)
    with SandboxServer(ledger) as server:
        adapter = RestAdapter({"base_url": server.url, "max_retries": 0, "timeout": 2.0})
        yield server, adapter
        adapter.close()


def _ledger(server: SandboxServer) -> SandboxLedger:
    return server.ledger


def _enqueue(sessions: sessionmaker[Session], entries: list[JournalEntry]) -> list[int]:
    with sessions.begin() as session:
        return [
            enqueue_entry(session, e, kind="payment", amount=e.total_debit,
                          cash_amount=e.lines[0].debit, now=T0)
            for e in entries
        ]  # fmt: skip


def _drain(
    sessions: sessionmaker[Session], adapter: RestAdapter, clock: Clock, **options: object
) -> DrainReport:
    options.setdefault("retry_policy", RETRY)
    options.setdefault("worker_id", "w1")
    return drain(sessions, adapter, now_fn=clock, sleep_fn=clock.sleep, **options)  # type: ignore[arg-type]


def _rows(sessions: sessionmaker[Session]) -> list[OutboxEntry]:
    with sessions() as session:
        return list(session.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))


def _health(sessions: sessionmaker[Session]) -> breaker.BreakerStatus:
    with sessions() as session:
        status = breaker.breaker_status(session, RestAdapter.name)
    assert status is not None
    return status


def _unknown_account_entry(key: str) -> JournalEntry:
    return JournalEntry(
        key, sample_entry(1).entry_date, "unknown account", (
            JournalLine("1010", debit=Decimal("12.34")),
            JournalLine("9999", credit=Decimal("12.34")),
        ), reference="TRN-BAD",
    )  # fmt: skip


def test_a_batch_is_one_request_and_every_row_is_posted_once(
    db_sessions: sessionmaker[Session], sandbox: tuple[SandboxServer, RestAdapter]
) -> None:
    server, adapter = sandbox
    entries = [sample_entry(n, key_prefix="batch") for n in range(1, 31)]
    _enqueue(db_sessions, entries)
    server.reset_stats()
    report = _drain(db_sessions, adapter, Clock(), batch_size=50)
    assert (report.claimed, report.posted, report.dead, report.duplicates) == (30, 30, 0, 0)
    assert report.posted_amount == sum((e.total_debit for e in entries), Decimal(0))
    assert server.stats()["requests"] == 1  # the whole batch in one POST /entries/batch
    rows = _rows(db_sessions)
    assert all(r.status == "posted" and r.attempts == 1 for r in rows)
    for row, entry in zip(rows, entries, strict=True):
        found = _ledger(server).find_entry(entry.idempotency_key)
        assert found is not None and found.erp_reference == row.erp_reference
        assert found.lines == entry.lines
    with db_sessions() as session:
        assert session.scalar(select(func.count(PostingAttempt.id))) == 30
    health = _health(db_sessions)
    assert (health.circuit_state, health.samples) == ("closed", 1)  # one call, one latency sample
    assert health.last_success_at is not None


def test_batches_are_capped_by_the_adapters_max_batch_size(
    db_sessions: sessionmaker[Session], sandbox: tuple[SandboxServer, RestAdapter]
) -> None:
    server, adapter = sandbox
    _enqueue(db_sessions, [sample_entry(n, key_prefix="cap") for n in range(1, 131)])
    server.reset_stats()
    report = _drain(db_sessions, adapter, Clock(), batch_size=500)
    assert report.posted == 130 and server.stats()["requests"] == 2  # 100 + 30
    assert _ledger(server).entry_count() == 130


def test_an_unknown_account_in_one_entry_dead_letters_only_that_row(
    db_sessions: sessionmaker[Session], sandbox: tuple[SandboxServer, RestAdapter]
) -> None:
    server, adapter = sandbox
    good = [sample_entry(n, key_prefix="mixed") for n in range(1, 6)]
    bad = _unknown_account_entry("mixed-bad")
    ids = _enqueue(db_sessions, [*good[:2], bad, *good[2:]])
    report = _drain(db_sessions, adapter, Clock())
    assert (report.posted, report.dead, report.retried) == (5, 1, 0)
    by_id = {row.id: row for row in _rows(db_sessions)}
    assert (by_id[ids[2]].status, by_id[ids[2]].attempts) == ("dead", 1)
    assert by_id[ids[2]].last_error.startswith("[unknown_account]")
    assert all(by_id[i].status == "posted" for i in ids if i != ids[2])
    assert _ledger(server).entry_count() == 5
    assert _ledger(server).find_entry("mixed-bad") is None
    with db_sessions() as session:
        item = session.scalars(select(WorkItem)).one()
    assert report.dead_letter_ids == [item.id]
    assert (item.kind, item.outbox_id) == ("dead_letter", ids[2])
    # The ERP answered: one refusal does not count against its health.
    health = _health(db_sessions)
    assert (health.circuit_state, health.consecutive_failures) == ("closed", 0)


def test_post_each_gives_each_entry_its_own_outcome(
    sandbox: tuple[SandboxServer, RestAdapter],
) -> None:
    server, adapter = sandbox
    first, last = sample_entry(1, key_prefix="each"), sample_entry(2, key_prefix="each")
    outcomes = adapter.post_each([first, _unknown_account_entry("each-bad"), last])
    assert isinstance(outcomes[0], PostingResult) and isinstance(outcomes[2], PostingResult)
    assert isinstance(outcomes[1], UnknownAccountError)
    assert outcomes[2].created is True
    assert _ledger(server).entry_count() == 2


def test_a_transient_batch_failure_backs_off_every_row_then_posts_them(
    db_sessions: sessionmaker[Session], sandbox: tuple[SandboxServer, RestAdapter]
) -> None:
    server, adapter = sandbox
    _enqueue(db_sessions, [sample_entry(n, key_prefix="down") for n in range(1, 11)])
    server.faults.set_plan(FaultPlan(fail_next=1))
    clock = Clock()
    report = _drain(db_sessions, adapter, clock)
    assert (report.retried, report.posted, report.dead) == (10, 0, 0)
    rows = _rows(db_sessions)
    assert all(r.status == "pending" and r.attempts == 1 for r in rows)
    assert all(r.next_attempt_at > T0 for r in rows)
    assert all(r.last_error.startswith("[unavailable]") for r in rows)
    assert _health(db_sessions).consecutive_failures == 1  # one failed call, not ten
    report = _drain(db_sessions, adapter, clock, once=False)
    assert (report.posted, report.dead) == (10, 0)
    assert _ledger(server).entry_count() == 10
    assert _health(db_sessions).consecutive_failures == 0


def test_a_failing_batch_opens_the_breaker_and_stops_claiming(
    db_sessions: sessionmaker[Session], sandbox: tuple[SandboxServer, RestAdapter]
) -> None:
    server, adapter = sandbox
    _enqueue(db_sessions, [sample_entry(n, key_prefix="trip") for n in range(1, 9)])
    server.faults.set_plan(FaultPlan(fail_next=100))
    policy = BreakerPolicy(failure_threshold=3, cool_down=timedelta(seconds=60))
    clock = Clock()
    first = _drain(db_sessions, adapter, clock, batch_size=4, breaker_policy=policy)
    assert first.retried == 8 and not first.breaker_blocked  # two batches, two failures
    assert _health(db_sessions).consecutive_failures == 2
    clock.sleep(3600)
    second = _drain(db_sessions, adapter, clock, batch_size=4, breaker_policy=policy)
    assert second.breaker_blocked and second.claimed == 4  # tripped on the first batch
    assert _health(db_sessions).circuit_state == "open"
    assert sum(1 for r in _rows(db_sessions) if r.attempts == 2) == 4


def test_a_batch_whose_outcome_was_lost_is_answered_by_the_keys(
    db_sessions: sessionmaker[Session], sandbox: tuple[SandboxServer, RestAdapter]
) -> None:
    """A crash after the ERP answered, before the outcome commit: every row stays leased; when
    the lease expires another worker posts the batch again and the ERP dedups each key."""
    server, adapter = sandbox
    entries = [sample_entry(n, key_prefix="lost") for n in range(1, 13)]
    _enqueue(db_sessions, entries)

    class Crash(Exception):
        pass

    def die_after_the_call(event: str, _outbox_id: int) -> None:
        if event == "called":
            raise Crash

    clock = Clock()
    with pytest.raises(Crash):
        _drain(db_sessions, adapter, clock, on_event=die_after_the_call)
    assert all(r.status == "in_flight" for r in _rows(db_sessions))
    assert _ledger(server).entry_count() == 12  # posted, but the store does not know it
    clock.sleep(600)  # past the five-minute lease
    report = _drain(db_sessions, adapter, clock, worker_id="w2")
    assert (report.posted, report.duplicates) == (12, 12)
    assert _ledger(server).entry_count() == 12
    for row, entry in zip(_rows(db_sessions), entries, strict=True):
        found = _ledger(server).find_entry(entry.idempotency_key)
        assert row.status == "posted" and found is not None
        assert row.erp_reference == found.erp_reference


def test_a_stop_request_before_the_call_hands_the_whole_batch_back(
    db_sessions: sessionmaker[Session], sandbox: tuple[SandboxServer, RestAdapter]
) -> None:
    server, adapter = sandbox
    _enqueue(db_sessions, [sample_entry(n, key_prefix="stop") for n in range(1, 6)])
    stop = threading.Event()

    def stop_on_claim(event: str, _outbox_id: int) -> None:
        if event == "claimed":
            stop.set()

    report = _drain(db_sessions, adapter, Clock(), on_event=stop_on_claim, stop_event=stop)
    assert (report.claimed, report.released, report.posted) == (5, 5, 0)
    rows = _rows(db_sessions)
    assert all(r.status == "pending" and r.attempts == 0 for r in rows)
    assert _ledger(server).entry_count() == 0


def test_every_fault_mode_in_small_batches_ends_posted_exactly_once(
    db_sessions: sessionmaker[Session], sandbox: tuple[SandboxServer, RestAdapter]
) -> None:
    server, adapter = sandbox
    adapter.close()
    adapter = RestAdapter({"base_url": server.url, "max_retries": 0, "timeout": 0.2})
    server.faults.set_plan(
        FaultPlan(error_rate=0.1, rate_limit_rate=0.1, timeout_rate=0.05, drop_rate=0.1,
                  malformed_rate=0.1, hang=0.5, retry_after=3.0, seed=11)
    )  # fmt: skip
    entries = [sample_entry(n, key_prefix="faults") for n in range(1, 61)]
    _enqueue(db_sessions, entries)
    clock = Clock()
    report = _drain(
        db_sessions, adapter, clock, once=False, batch_size=3, max_attempts=30,
        retry_policy=RetryPolicy(base_seconds=1, cap_seconds=10, floor_seconds=1),
        breaker_policy=BreakerPolicy(failure_threshold=1000),
    )  # fmt: skip
    faults = server.stats()["faults"]
    adapter.close()
    assert (report.posted, report.dead) == (60, 0)
    assert all(count > 0 for count in faults.values()), faults
    assert report.duplicates > 0
    assert _ledger(server).entry_count() == 60
    for entry in entries:
        found = _ledger(server).find_entry(entry.idempotency_key)
        assert found is not None and found.lines == entry.lines
    assert sum(_ledger(server).trial_balance().values(), Decimal(0)) == 0
