"""The outbox worker against a real embedded ledger (its own SQLite file), on both stores.

Faults come from the ledger's own ``fail_mode`` switch and from entries it really refuses; time
is an injected clock, so backoff and cool-downs are checked without sleeping.
"""

from __future__ import annotations

import shutil
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.engine import breaker
from claimsync_console.engine.breaker import BreakerPolicy
from claimsync_console.engine.outbox import enqueue_entry
from claimsync_console.engine.retry import RetryPolicy
from claimsync_console.engine.worker import DrainReport, drain, run
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.store import queries_outbox as q
from claimsync_console.store.models_engine import OutboxEntry, PostingAttempt, WorkItem
from tests.engine import test_outbox
from tests.engine.crash_worker import expected_balances, make_ledger, sample_entry

# The fixtures of test_outbox: one migrated store per backend and module, emptied per test.
migrated_store = test_outbox.migrated_store
db_sessions = test_outbox.db_sessions

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
RETRY = RetryPolicy(base_seconds=10, cap_seconds=100, floor_seconds=1)
PATIENT_BREAKER = BreakerPolicy(failure_threshold=1000)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)


@pytest.fixture(scope="module")
def ledger_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeding a chart and a year of periods costs a dozen fsyncs; do it once and copy."""
    path = tmp_path_factory.mktemp("ledger") / "template.sqlite3"
    make_ledger(path)  # every connection is closed after each call: the file is complete
    return path


@pytest.fixture
def ledger(ledger_template: Path, tmp_path: Path) -> LedgerAdapter:
    path = tmp_path / "ledger.sqlite3"
    shutil.copyfile(ledger_template, path)
    return make_ledger(path, retry_after=600.0)


def _enqueue(sessions: sessionmaker[Session], entries: list[JournalEntry]) -> list[int]:
    with sessions.begin() as session:
        return [
            enqueue_entry(session, e, kind="payment", amount=e.total_debit,
                          cash_amount=e.lines[0].debit, now=T0)
            for e in entries
        ]  # fmt: skip


def _drain(
    sessions: sessionmaker[Session], ledger: LedgerAdapter, clock: Clock, **options: object
) -> DrainReport:
    options.setdefault("retry_policy", RETRY)
    options.setdefault("worker_id", "w1")
    return drain(sessions, ledger, now_fn=clock, sleep_fn=clock.sleep, **options)  # type: ignore[arg-type]


def _rows(sessions: sessionmaker[Session]) -> list[OutboxEntry]:
    with sessions() as session:
        return list(session.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))


def _attempts(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count(PostingAttempt.id))) or 0)


def _breaker(sessions: sessionmaker[Session], ledger: LedgerAdapter) -> breaker.BreakerStatus:
    with sessions() as session:
        status = breaker.breaker_status(session, ledger.name)
    assert status is not None
    return status


# --------------------------------------------------------------------------- the happy path


def test_pending_rows_are_posted_and_the_ledger_balances(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    entries = [sample_entry(n) for n in range(1, 6)]
    _enqueue(db_sessions, entries)
    report = _drain(db_sessions, ledger, Clock())
    assert (report.claimed, report.posted, report.duplicates, report.dead) == (5, 5, 0, 0)
    assert report.posted_amount == sum((e.total_debit for e in entries), Decimal(0))
    assert report.next_wakeup is None
    for row, entry in zip(_rows(db_sessions), entries, strict=True):
        in_ledger = ledger.find_entry(entry.idempotency_key)
        assert in_ledger is not None and in_ledger.lines == entry.lines
        assert (row.status, row.erp_reference, row.posted_at) == (
            "posted", in_ledger.erp_reference, T0
        )  # fmt: skip
        assert row.lease_owner is None and row.attempts == 1
    expected = expected_balances(entries)
    assert {a: b for a, b in ledger.trial_balance().items() if b} == expected
    health = _breaker(db_sessions, ledger)
    assert (health.circuit_state, health.last_success_at, health.samples) == ("closed", T0, 5)
    assert health.p50_ms is not None and health.p95_ms is not None

    again = _drain(db_sessions, ledger, Clock())
    assert again.claimed == 0 and ledger.entry_count() == 5


def test_a_post_whose_outcome_was_lost_is_answered_as_already_posted(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    entry = sample_entry(9)
    _enqueue(db_sessions, [entry])
    earlier = ledger.post_entry(entry)  # a previous worker got this far, then died
    report = _drain(db_sessions, ledger, Clock())
    assert (report.posted, report.duplicates) == (1, 1)
    assert _rows(db_sessions)[0].erp_reference == earlier.erp_reference
    assert ledger.entry_count() == 1


# --------------------------------------------------------------------------- failures


def test_a_transient_failure_is_retried_later_with_backoff(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    _enqueue(db_sessions, [sample_entry(1), sample_entry(2)])
    clock = Clock()
    ledger.fail_mode = "unavailable"
    report = _drain(db_sessions, ledger, clock, breaker_policy=PATIENT_BREAKER)
    assert (report.retried, report.posted, report.dead) == (2, 0, 0)
    rows = _rows(db_sessions)
    for row in rows:
        assert (row.status, row.attempts, row.lease_owner) == ("pending", 1, None)
        assert "[unavailable]" in row.last_error
        assert T0 + timedelta(seconds=1) <= row.next_attempt_at <= T0 + timedelta(seconds=10)
    assert report.next_wakeup == min(row.next_attempt_at for row in rows)

    # Not due yet: the same drain repeated calls nothing (no tight retry loop).
    assert _drain(db_sessions, ledger, clock, breaker_policy=PATIENT_BREAKER).claimed == 0
    assert _attempts(db_sessions) == 2

    ledger.fail_mode = ""
    clock.advance(10)
    later = _drain(db_sessions, ledger, clock)
    assert later.posted == 2 and ledger.entry_count() == 2
    assert [r.attempts for r in _rows(db_sessions)] == [2, 2]


def test_retry_after_is_honoured(db_sessions: sessionmaker[Session], ledger: LedgerAdapter) -> None:
    _enqueue(db_sessions, [sample_entry(1)])
    ledger.fail_mode = "rate_limited"  # the ledger asks for 600 s (see the fixture)
    _drain(db_sessions, ledger, Clock(), breaker_policy=PATIENT_BREAKER)
    row = _rows(db_sessions)[0]
    assert row.next_attempt_at == T0 + timedelta(seconds=600)
    assert row.last_error.startswith("[rate_limited]")


def test_a_refused_entry_becomes_a_dead_letter_with_its_history(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    good = sample_entry(1)
    refused = JournalEntry(
        "bad-account-1", good.entry_date, "unknown account", (
            JournalLine("1010", debit=Decimal("12.34")),
            JournalLine("9999", credit=Decimal("12.34")),
        ), reference="TRN0009",
    )  # fmt: skip
    ids = _enqueue(db_sessions, [refused, good])
    report = _drain(db_sessions, ledger, Clock())
    assert (report.dead, report.posted, report.retried) == (1, 1, 0)
    dead, posted = _rows(db_sessions)
    assert (dead.status, dead.attempts, posted.status) == ("dead", 1, "posted")
    assert ledger.entry_count() == 1 and ledger.find_entry("bad-account-1") is None
    with db_sessions() as session:
        item = session.scalars(select(WorkItem)).one()
    assert report.dead_letter_ids == [item.id]
    assert (item.kind, item.state, item.outbox_id, item.amount) == (
        "dead_letter", "open", ids[0], Decimal("12.34")
    )  # fmt: skip
    assert item.error.startswith("[unknown_account]") and "9999" in item.error
    assert item.error_signature and "9999" not in item.error_signature
    assert item.details["idempotency_key"] == "bad-account-1"
    [attempt] = item.details["attempts"]
    assert attempt["outcome"] == "permanent" and attempt["error"] == item.error
    # The ERP answered: a refusal is no reason to stop posting everything else.
    health = _breaker(db_sessions, ledger)
    assert (health.circuit_state, health.consecutive_failures) == ("closed", 0)


def test_running_out_of_attempts_is_a_dead_letter_with_every_attempt(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    _enqueue(db_sessions, [sample_entry(1)])
    ledger.fail_mode = "unavailable"
    clock = Clock()
    report = _drain(
        db_sessions, ledger, clock, once=False, max_attempts=3, breaker_policy=PATIENT_BREAKER
    )
    assert (report.retried, report.dead, report.posted) == (2, 1, 0)
    assert len(clock.slept) == 2 and clock.now > T0  # waited out two backoffs, never slept
    row = _rows(db_sessions)[0]
    assert (row.status, row.attempts) == ("dead", 3)
    with db_sessions() as session:
        item = session.scalars(select(WorkItem)).one()
    history = item.details["attempts"]
    assert [a["outcome"] for a in history] == ["transient"] * 3
    assert [a["at"] for a in history] == sorted({a["at"] for a in history})  # 3 distinct times
    assert ledger.entry_count() == 0


def test_an_unreadable_row_dies_without_reaching_the_erp(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    [outbox_id] = _enqueue(db_sessions, [sample_entry(1)])
    with db_sessions.begin() as session:
        session.execute(
            update(OutboxEntry).where(OutboxEntry.id == outbox_id).values(entry={"format": 1})
        )
    report = _drain(db_sessions, ledger, Clock())
    assert report.dead == 1
    assert _rows(db_sessions)[0].last_error.startswith("[unreadable_entry]")
    assert _breaker(db_sessions, ledger).samples == 0  # the adapter was never called


# --------------------------------------------------------------------------- circuit breaker


def test_the_breaker_opens_stops_calling_and_a_half_open_probe_closes_it(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    policy = BreakerPolicy(failure_threshold=3, cool_down=timedelta(seconds=60))
    _enqueue(db_sessions, [sample_entry(n) for n in range(1, 6)])
    clock = Clock()
    ledger.fail_mode = "unavailable"
    report = _drain(db_sessions, ledger, clock, breaker_policy=policy)
    assert (report.retried, report.released, report.breaker_blocked) == (3, 2, True)
    assert report.breaker_retry_at == T0 + timedelta(seconds=60)
    assert _attempts(db_sessions) == 3
    assert [r.attempts for r in _rows(db_sessions)] == [1, 1, 1, 0, 0]
    assert {r.status for r in _rows(db_sessions)} == {"pending"}
    assert _breaker(db_sessions, ledger).circuit_state == "open"

    # While open, no worker calls the ERP, even one that would now succeed.
    ledger.fail_mode = ""
    clock.advance(30)
    blocked = _drain(db_sessions, ledger, clock, breaker_policy=policy, worker_id="w2")
    assert (blocked.claimed, blocked.breaker_blocked) == (0, True)
    assert _attempts(db_sessions) == 3 and ledger.entry_count() == 0

    clock.advance(31)  # cool-down over: one probe, it succeeds, the circuit closes
    healed = _drain(db_sessions, ledger, clock, breaker_policy=policy, worker_id="w2")
    assert (healed.posted, healed.breaker_blocked) == (5, False)
    health = _breaker(db_sessions, ledger)
    assert (health.circuit_state, health.consecutive_failures, health.last_success_at) == (
        "closed", 0, clock.now
    )  # fmt: skip


def test_a_failed_probe_reopens_the_circuit_for_another_cool_down(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    policy = BreakerPolicy(failure_threshold=2, cool_down=timedelta(seconds=60))
    _enqueue(db_sessions, [sample_entry(n) for n in range(1, 4)])
    clock = Clock()
    ledger.fail_mode = "unavailable"
    _drain(db_sessions, ledger, clock, breaker_policy=policy)
    assert _attempts(db_sessions) == 2
    clock.advance(61)
    probe = _drain(db_sessions, ledger, clock, breaker_policy=policy)
    assert (probe.claimed, probe.retried, probe.breaker_blocked) == (1, 1, True)
    assert _attempts(db_sessions) == 3
    health = _breaker(db_sessions, ledger)
    assert (health.circuit_state, health.opened_at) == ("open", clock.now)
    clock.advance(59)
    assert _drain(db_sessions, ledger, clock, breaker_policy=policy).claimed == 0
    assert _attempts(db_sessions) == 3


def test_a_stop_request_finishes_the_current_row_and_hands_back_the_rest(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    _enqueue(db_sessions, [sample_entry(n) for n in range(1, 6)])
    stop = threading.Event()

    def stop_after_first(event: str, _outbox_id: int) -> None:
        if event == "recorded":
            stop.set()

    report = _drain(db_sessions, ledger, Clock(), on_event=stop_after_first, stop_event=stop)
    assert (report.claimed, report.posted, report.released) == (5, 1, 4)
    rows = _rows(db_sessions)
    assert [r.status for r in rows] == ["posted"] + ["pending"] * 4
    assert [r.attempts for r in rows[1:]] == [0] * 4 and {r.lease_owner for r in rows[1:]} == {None}
    assert ledger.entry_count() == 1


# --------------------------------------------------------------------------- several workers


def test_concurrent_workers_never_post_the_same_row_twice(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    entries = [sample_entry(n) for n in range(1, 61)]
    ids = _enqueue(db_sessions, entries)
    claimed_by: dict[str, list[int]] = defaultdict(list)
    reports: dict[str, DrainReport] = {}
    start = threading.Barrier(4)

    def work(name: str) -> None:
        def seen(event: str, outbox_id: int) -> None:
            if event == "claimed":
                claimed_by[name].append(outbox_id)

        start.wait()
        reports[name] = drain(db_sessions, ledger, worker_id=name, batch_size=5, on_event=seen)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(reports) == 4
    every_claim = [i for claims in claimed_by.values() for i in claims]
    assert sorted(every_claim) == ids  # each row claimed by exactly one worker, once
    assert sum(r.posted for r in reports.values()) == 60
    assert sum(r.duplicates for r in reports.values()) == 0
    assert ledger.entry_count() == 60 and _attempts(db_sessions) == 60
    assert {a: b for a, b in ledger.trial_balance().items() if b} == expected_balances(entries)


def test_an_abandoned_lease_is_taken_over_after_it_expires(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    entries = [sample_entry(n) for n in range(1, 4)]
    ids = _enqueue(db_sessions, entries)
    with db_sessions.begin() as session:  # a worker claims, posts one row, and dies
        q.claim_due(session, worker_id="ghost", now=T0, lease=timedelta(seconds=60), limit=3)
    ledger.post_entry(entries[0])
    clock = Clock()
    clock.advance(59)
    assert _drain(db_sessions, ledger, clock, worker_id="heir").claimed == 0
    clock.advance(1)
    report = _drain(db_sessions, ledger, clock, worker_id="heir")
    assert (report.claimed, report.posted, report.duplicates) == (3, 3, 1)
    assert ledger.entry_count() == 3
    with db_sessions.begin() as session:  # the ghost's late verdict changes nothing
        assert not q.mark_retry(
            session, ids[1], worker_id="ghost", error="late", next_attempt_at=T0
        )
    assert {r.status for r in _rows(db_sessions)} == {"posted"}


def test_run_keeps_draining_until_stopped(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    stop = threading.Event()
    reports: list[DrainReport] = []
    totals: list[DrainReport] = []
    thread = threading.Thread(
        target=lambda: totals.append(
            run(db_sessions, ledger, worker_id="bg", stop_event=stop, poll_interval=0.02,
                on_report=reports.append)
        )
    )  # fmt: skip
    thread.start()
    try:
        _enqueue(db_sessions, [sample_entry(n) for n in range(1, 4)])
        for _ in range(500):  # rows enqueued after the loop started are picked up
            if ledger.entry_count() == 3 and reports:
                break
            stop.wait(0.02)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert ledger.entry_count() == 3
    assert totals[0].posted == 3 and {r.status for r in _rows(db_sessions)} == {"posted"}
