"""The outbox's parts: serialisation, idempotent enqueue, claiming with leases, the circuit
breaker's stored state, and the backoff policy. The worker itself is in test_worker.py."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain.journal import JournalEntry, JournalLine, UnbalancedEntryError
from claimsync_console.engine import breaker
from claimsync_console.engine.breaker import BreakerPolicy
from claimsync_console.engine.outbox import (
    EntryFormatError,
    enqueue_entry,
    entry_from_json,
    entry_to_json,
)
from claimsync_console.engine.retry import RetryPolicy
from claimsync_console.store import queries_outbox as q
from claimsync_console.store.db import make_engine, session_factory, upgrade_to_head
from claimsync_console.store.models_engine import (
    AdapterHealth,
    OutboxEntry,
    PostingAttempt,
    WorkItem,
)
from tests.conftest import _postgres_schema_url, _postgres_skip_reason, postgres_base_url
from tests.engine.crash_worker import sample_entry

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CLEARED = (PostingAttempt, WorkItem, OutboxEntry, AdapterHealth)  # children first


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def migrated_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    """One migrated database per backend for the whole module (migrating per test costs more
    than the tests); ``db_sessions`` below empties the outbox tables after each test."""
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite+pysqlite:///{tmp_path_factory.mktemp('db')}/s.db"])
    else:
        reason = _postgres_skip_reason()
        if reason is not None:
            if os.environ.get("CLAIMSYNC_REQUIRE_POSTGRES") == "1":
                pytest.fail(f"CLAIMSYNC_REQUIRE_POSTGRES=1 but {reason}")
            pytest.skip(reason)
        urls = _postgres_schema_url(postgres_base_url())
    url = next(urls)
    engine = make_engine(url)
    upgrade_to_head(engine)
    yield session_factory(engine)
    engine.dispose()
    for _ in urls:  # lets the PostgreSQL helper drop its schema
        pass


@pytest.fixture
def db_sessions(migrated_store: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    """Overrides the conftest fixture: same backends, emptied instead of re-migrated."""
    yield migrated_store
    with migrated_store.begin() as session:
        for model in CLEARED:
            session.execute(delete(model))


def _enqueue(session: Session, entry: JournalEntry, now: datetime = T0, **extra: Any) -> int:
    return enqueue_entry(
        session, entry, kind="payment", amount=entry.total_debit, cash_amount=Decimal("1.00"),
        now=now, **extra,
    )  # fmt: skip


# --------------------------------------------------------------------------- serialisation


def test_entry_json_round_trip_is_exact_including_decimal_exponents() -> None:
    entry = JournalEntry(
        idempotency_key="clp:abc",
        entry_date=date(2026, 2, 28),
        description="Paiement réclamation № 7",
        reference="TRN-1",
        lines=(
            JournalLine("1010", debit=Decimal("70"), memo="cash"),
            JournalLine("4100", debit=Decimal("0.10"), cost_centre="CC-9"),
            JournalLine("1230", credit=Decimal("70.100")),
        ),
    )
    data = entry_to_json(entry)
    assert data["lines"][0]["debit"] == "70" and data["lines"][2]["credit"] == "70.100"
    assert data["entry_date"] == "2026-02-28"
    back = entry_from_json(data)
    assert back == entry
    as_text = [(str(line.debit), str(line.credit)) for line in back.lines]
    assert as_text == [("70", "0.00"), ("0.10", "0.00"), ("0.00", "70.100")]


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d.update(format=99),
        lambda d: d.pop("entry_date"),
        lambda d: d["lines"][0].update(debit=70.0),  # a float must never become money
        lambda d: d["lines"][0].update(debit="seventy"),
        lambda d: d["lines"][0].update(debit="NaN"),
        lambda d: d.update(entry_date="2026-02-30"),
    ],
)
def test_an_unreadable_entry_is_a_clear_error(corrupt: Any) -> None:
    data = entry_to_json(sample_entry(1))
    corrupt(data)
    with pytest.raises(EntryFormatError):
        entry_from_json(data)


def test_the_stored_entry_reads_back_exactly(db_sessions: sessionmaker[Session]) -> None:
    entry = sample_entry(42)
    with db_sessions.begin() as session:
        outbox_id = _enqueue(session, entry, remittance_id=None, trace_number="TRN0001")
    with db_sessions() as session:
        row = session.get(OutboxEntry, outbox_id)
        assert row is not None
        assert entry_from_json(row.entry) == entry
        assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, T0)
        assert row.amount == entry.total_debit and row.trace_number == "TRN0001"


# --------------------------------------------------------------------------- enqueue


def test_enqueue_is_idempotent_by_key_and_the_first_write_wins(
    db_sessions: sessionmaker[Session],
) -> None:
    first = sample_entry(1)
    other_lines = (*first.lines[:2], JournalLine("1230", credit=first.total_debit, memo="new"))
    reworded = JournalEntry(first.idempotency_key, first.entry_date, "changed", other_lines)
    with db_sessions.begin() as session:
        a = _enqueue(session, first)
        b = _enqueue(session, reworded, now=T0 + timedelta(hours=1))
        c = _enqueue(session, sample_entry(2))
    with db_sessions.begin() as session:
        again = _enqueue(session, first)
        assert session.scalar(select(func.count(OutboxEntry.id))) == 2
        stored = session.get(OutboxEntry, a)
        assert stored is not None and stored.entry["description"] == first.description
        assert stored.created_at == T0
    assert a == b == again and c != a


def test_enqueue_lives_and_dies_with_the_callers_transaction(
    db_sessions: sessionmaker[Session],
) -> None:
    with pytest.raises(RuntimeError), db_sessions.begin() as session:
        _enqueue(session, sample_entry(1))
        raise RuntimeError("the state change failed")
    with db_sessions() as session:
        assert session.scalar(select(func.count(OutboxEntry.id))) == 0


def test_enqueue_refuses_an_unbalanced_entry_or_an_unknown_kind(
    db_sessions: sessionmaker[Session],
) -> None:
    good = sample_entry(1)
    lopsided = JournalEntry(
        "bad-1", good.entry_date, "x", (JournalLine("1010", debit=Decimal("1.00")),
                                         JournalLine("1230", credit=Decimal("0.99")))
    )  # fmt: skip
    with db_sessions.begin() as session:
        with pytest.raises(UnbalancedEntryError):
            _enqueue(session, lopsided)
        with pytest.raises(ValueError, match="outbox kind"):
            enqueue_entry(
                session, good, kind="bonus", amount=Decimal(1), cash_amount=Decimal(0), now=T0
            )


# --------------------------------------------------------------------------- claiming


def _enqueue_many(sessions: sessionmaker[Session], count: int) -> list[int]:
    with sessions.begin() as session:
        return [_enqueue(session, sample_entry(n)) for n in range(1, count + 1)]


def test_claim_leases_due_rows_once_and_an_expired_lease_frees_them(
    db_sessions: sessionmaker[Session],
) -> None:
    ids = _enqueue_many(db_sessions, 5)
    lease = timedelta(minutes=1)
    with db_sessions.begin() as session:
        first = q.claim_due(session, worker_id="a", now=T0, lease=lease, limit=3)
    with db_sessions.begin() as session:
        second = q.claim_due(session, worker_id="b", now=T0, lease=lease, limit=10)
        third = q.claim_due(session, worker_id="c", now=T0 + timedelta(seconds=59), lease=lease,
                            limit=10)  # fmt: skip
    assert [c.id for c in first] == ids[:3] and [c.id for c in second] == ids[3:]
    assert third == []
    with db_sessions.begin() as session:
        taken_over = q.claim_due(
            session, worker_id="c", now=T0 + timedelta(minutes=1), lease=lease, limit=10
        )
        rows = session.scalars(select(OutboxEntry).order_by(OutboxEntry.id)).all()
    assert sorted(c.id for c in taken_over) == ids
    assert {(r.status, r.lease_owner) for r in rows} == {("in_flight", "c")}
    assert {r.lease_expires_at for r in rows} == {T0 + timedelta(minutes=2)}


def test_claim_skips_rows_not_yet_due_and_release_hands_them_back(
    db_sessions: sessionmaker[Session],
) -> None:
    ids = _enqueue_many(db_sessions, 3)
    later = T0 + timedelta(minutes=10)
    with db_sessions.begin() as session:
        claimed = q.claim_due(session, worker_id="a", now=T0, lease=timedelta(minutes=5), limit=3)
        assert q.record_attempt(session, ids[0], outcome="transient", error="down",
                                latency_ms=3, now=T0) == 1  # fmt: skip
        assert q.mark_retry(session, ids[0], worker_id="a", error="down", next_attempt_at=later)
        assert not q.mark_retry(session, ids[1], worker_id="b", error="x", next_attempt_at=later)
        assert q.release(session, [ids[1], ids[2]], worker_id="a") == 2
    assert len(claimed) == 3
    with db_sessions.begin() as session:
        due_now = q.claim_due(session, worker_id="a", now=T0, lease=timedelta(minutes=5), limit=9)
        assert [c.id for c in due_now] == ids[1:]
        assert q.next_wakeup(session) == T0 + timedelta(minutes=5)  # the new leases
        q.release(session, ids[1:], worker_id="a")
        assert q.next_wakeup(session) == T0
        row = session.get(OutboxEntry, ids[0])
        assert row is not None and (row.status, row.attempts, row.last_error) == (
            "pending", 1, "down"
        )  # fmt: skip
        assert [a.outcome for a in q.attempt_history(session, ids[0])] == ["transient"]


def test_posted_is_final_and_requeue_only_revives_dead_rows(
    db_sessions: sessionmaker[Session],
) -> None:
    ids = _enqueue_many(db_sessions, 2)
    with db_sessions.begin() as session:
        q.claim_due(session, worker_id="a", now=T0, lease=timedelta(minutes=5), limit=2)
        assert q.mark_posted(session, ids[0], erp_reference="JE-1", now=T0)
        assert not q.mark_posted(session, ids[0], erp_reference="JE-2", now=T0)
        assert q.mark_dead(session, ids[1], worker_id="a", error="[unknown_account] 9999")
        assert not q.mark_dead(session, ids[0], worker_id="a", error="too late")
        assert q.requeue(session, ids, now=T0 + timedelta(hours=1)) == 1
        assert q.status_counts(session) == {"pending": 1, "in_flight": 0, "posted": 1, "dead": 0}
        posted = session.get(OutboxEntry, ids[0])
        revived = session.get(OutboxEntry, ids[1])
    assert posted is not None and posted.erp_reference == "JE-1"
    assert revived is not None and revived.attempts == 0
    assert revived.next_attempt_at == T0 + timedelta(hours=1)


# --------------------------------------------------------------------------- breaker state


def test_half_open_lets_one_probe_through_and_forgets_an_abandoned_one(
    db_sessions: sessionmaker[Session],
) -> None:
    policy = BreakerPolicy(failure_threshold=1, cool_down=timedelta(seconds=60))
    with db_sessions.begin() as session:
        assert breaker.record_failure(session, "erp", policy, T0, latency_ms=5.0) == "open"
    later = T0 + timedelta(seconds=60)
    with db_sessions.begin() as session:
        first = breaker.admit(session, "erp", policy, later)
    with db_sessions.begin() as session:
        second = breaker.admit(session, "erp", policy, later + timedelta(seconds=1))
    assert (first.allowed, first.probe, first.state) == (True, True, "half_open")
    assert (second.allowed, second.retry_at) == (False, later + timedelta(seconds=60))
    with db_sessions.begin() as session:  # the first prober died: a new probe after cool-down
        third = breaker.admit(session, "erp", policy, later + timedelta(seconds=60))
        breaker.release_probe(session, "erp", later + timedelta(seconds=60))
        assert breaker.breaker_status(session, "erp").circuit_state == "open"  # type: ignore[union-attr]
    assert third.probe


def test_latency_percentiles_come_from_a_bounded_window(
    db_sessions: sessionmaker[Session],
) -> None:
    policy = BreakerPolicy(latency_window=20)
    with db_sessions.begin() as session:
        for ms in range(1, 31):
            breaker.record_success(session, "erp", policy, T0, latency_ms=float(ms))
        status = breaker.breaker_status(session, "erp")
    assert status is not None and status.samples == 20  # the newest 20: 11..30
    assert (status.p50_ms, status.p95_ms) == (20, 29)
    assert breaker.percentile([5.0, 1.0, 3.0], 0.5) == 3.0


# --------------------------------------------------------------------------- backoff


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(base_seconds=2, cap_seconds=60, floor_seconds=0.5)
    rng = random.Random(7)
    assert [policy.ceiling(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    for attempt in range(1, 12):
        draws = [policy.delay(attempt, rng=rng).total_seconds() for _ in range(200)]
        assert all(0.5 <= d <= policy.ceiling(attempt) for d in draws)
        if attempt >= 3:  # jitter spreads retries: not all at the ceiling, not all at once
            assert max(draws) - min(draws) > policy.ceiling(attempt) / 2


def test_retry_after_wins_when_the_erp_asks_for_longer() -> None:
    policy = RetryPolicy(base_seconds=1, cap_seconds=10)
    rng = random.Random(1)
    assert policy.delay(1, retry_after=120, rng=rng) == timedelta(seconds=120)
    assert policy.delay(1, retry_after=10**9, rng=rng) == timedelta(days=1)
    short = policy.delay(5, retry_after=0.0001, rng=rng).total_seconds()
    assert 0.5 <= short <= 10


def test_a_policy_that_could_retry_instantly_is_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(floor_seconds=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_seconds=100, cap_seconds=10)
