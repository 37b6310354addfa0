"""The engine's tables and their queries, on SQLite and PostgreSQL: work items opened once per
source, optimistic versions, keyset pages, totals, the audit chain, money kept to the cent."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine.workitems import error_signature, open_dead_letter
from claimsync_console.store import queries_engine as qe
from claimsync_console.store.db import make_engine, session_factory, upgrade_to_head
from claimsync_console.store.models_engine import (
    AdapterHealth,
    AuditEntry,
    ClaimAck,
    OutboxEntry,
    PaymentMatch,
    PostingAttempt,
    WorkItem,
)
from tests.conftest import _postgres_schema_url, _postgres_skip_reason, postgres_base_url

T0 = datetime(2026, 1, 20, 9, 30, tzinfo=UTC)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
ENGINE_TABLES = (PaymentMatch, ClaimAck, AuditEntry, PostingAttempt, OutboxEntry, WorkItem,
                 AdapterHealth)  # fmt: skip


def migrated_once(backend: str, folder: Path) -> Iterator[Engine]:
    """A database migrated once for a whole module (migrating per test costs most of the run):
    SQLite in ``folder``, or a PostgreSQL schema of its own, dropped afterwards."""
    if backend == "sqlite":
        urls: Iterator[str] = iter([f"sqlite+pysqlite:///{folder / 'claimsync.sqlite3'}"])
    else:
        reason = _postgres_skip_reason()
        if reason is not None:
            if os.environ.get("CLAIMSYNC_REQUIRE_POSTGRES") == "1":
                pytest.fail(f"CLAIMSYNC_REQUIRE_POSTGRES=1 but {reason}")
            pytest.skip(reason)
        urls = _postgres_schema_url(postgres_base_url())
    engine = make_engine(next(urls))
    try:
        upgrade_to_head(engine)
        yield engine
    finally:
        engine.dispose()
        next(urls, None)  # the PostgreSQL generator drops its schema when resumed


@pytest.fixture(scope="module", params=BACKENDS)
def module_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from migrated_once(request.param, tmp_path_factory.mktemp("engine_tables"))


@pytest.fixture
def db_sessions(module_engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions on the module's database, with the engine tables emptied after each test."""
    yield session_factory(module_engine)
    with module_engine.begin() as connection:
        for model in ENGINE_TABLES:
            connection.execute(delete(model))


def _open(session: Session, key: str, **fields: object) -> qe.Opened:
    values: dict[str, object] = {"kind": "unmatched_remittance", "amount": Decimal("10.00")}
    values.update(fields)
    return qe.open_work_item(session, source_key=key, now=T0, **values)  # type: ignore[arg-type]


def test_queue_indexes_exist(module_engine: Engine) -> None:
    inspector = inspect(module_engine)
    indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("work_items")}
    for columns in [
        ("kind", "state", "created_at", "id"),
        ("kind", "state", "payer_id"),
        ("kind", "state", "amount"),
        ("error_signature",),
        ("state", "created_at", "id"),
    ]:
        assert columns in indexed
    outbox = {tuple(ix["column_names"]) for ix in inspector.get_indexes("outbox")}
    assert ("status", "next_attempt_at") in outbox
    assert ("at",) in {tuple(ix["column_names"]) for ix in inspector.get_indexes("audit_log")}
    claims = {tuple(ix["column_names"]) for ix in inspector.get_indexes("claims")}
    assert ("payer_claim_control_number",) in claims
    assert ("payer_identifier", "billed_amount") in claims


def test_open_work_item_is_idempotent_by_kind_and_source(
    db_sessions: sessionmaker[Session],
) -> None:
    with db_sessions.begin() as session:
        first = _open(session, "claim_payment:1", payer_id="SMPMB")
        again = _open(session, "claim_payment:1", amount=Decimal("99.00"))
        other_kind = _open(session, "claim_payment:1", kind="denial")
    assert first.created and not again.created and other_kind.created
    assert again.id == first.id != other_kind.id
    with db_sessions() as session:
        item = qe.get_work_item(session, first.id)
        assert item is not None
        assert (item.state, item.version, item.amount) == ("open", 1, Decimal("10.00"))
        assert item.created_at == T0
        assert qe.get_work_item_by_source(session, "denial", "claim_payment:1") is not None


def test_open_work_items_batch_reports_new_and_existing_in_input_order(
    db_sessions: sessionmaker[Session],
) -> None:
    with db_sessions.begin() as session:
        existing = _open(session, "k2")
        items = [
            {"kind": "unmatched_remittance", "source_key": key, "amount": Decimal("1.00")}
            for key in ("k1", "k2", "k3", "k1")
        ]
        opened = qe.open_work_items(session, items, now=T0)
    assert [o.created for o in opened] == [True, False, True, False]
    assert opened[1].id == existing.id and opened[3].id == opened[0].id
    with db_sessions() as session:
        assert qe.count_work_items(session, qe.WorkItemFilter()) == (3, Decimal("12.00"))


def test_concurrent_open_makes_one_item(db_sessions: sessionmaker[Session]) -> None:
    """A second writer opening the same item while the first has not committed gets the first
    one's row, whichever order the database serialises them in."""
    results: list[qe.Opened] = []
    errors: list[BaseException] = []
    first = db_sessions()
    first.begin()
    mine = _open(first, "claim_payment:42")

    def other() -> None:
        try:
            with db_sessions.begin() as session:
                results.append(_open(session, "claim_payment:42"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=other)
    worker.start()
    first.commit()
    first.close()
    worker.join(timeout=60)
    assert not errors and not worker.is_alive()
    assert results == [qe.Opened(mine.id, False)]


def test_update_work_item_checks_the_version(db_sessions: sessionmaker[Session]) -> None:
    later = T0 + timedelta(minutes=5)
    with db_sessions.begin() as session:
        item_id = _open(session, "k").id
        assert qe.update_work_item(
            session, item_id, expected_version=1, now=later, state="in_progress",
            assigned_to="ana",
        ) == 2  # fmt: skip
        with pytest.raises(qe.StaleWorkItemError):
            qe.update_work_item(session, item_id, expected_version=1, now=later, state="resolved")
    with db_sessions() as session:
        item = qe.get_work_item(session, item_id)
        assert item is not None
        assert (item.state, item.version, item.assigned_to, item.updated_at) == (
            "in_progress", 2, "ana", later,
        )  # fmt: skip


def test_check_constraints_refuse_unknown_kinds(db_sessions: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), db_sessions.begin() as session:
        _open(session, "k", kind="not_a_kind")


def test_keyset_pages_walk_every_item_once(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions.begin() as session:
        for n in range(8):  # pairs share a created_at, so the id tie-break matters
            qe.open_work_item(
                session, kind="denial" if n % 3 else "unmatched_remittance",
                source_key=f"k{n}", amount=Decimal(n), now=T0 + timedelta(seconds=n // 2),
                payer_id="SMPMB" if n < 5 else "SMPAE",
            )  # fmt: skip
    seen: list[int] = []
    cursor = None
    with db_sessions() as session:
        while True:
            page = qe.list_work_items(session, after=cursor, limit=3)
            seen += [item.id for item in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen)) == 8
        every = session.scalars(select(WorkItem).order_by(WorkItem.created_at, WorkItem.id))
        assert seen == [item.id for item in every]
        wanted = qe.WorkItemFilter(kinds=("denial",), payer_id="SMPMB", min_amount=Decimal(2))
        page = qe.list_work_items(session, wanted)
        assert [i.source_key for i in page.items] == ["k2", "k4"]
        assert qe.count_work_items(session, wanted) == (2, Decimal("6.00"))
        found = qe.list_work_items(session, qe.WorkItemFilter(text="smpae")).items
        assert [i.source_key for i in found] == ["k5", "k6", "k7"]


def test_queue_totals_are_exact(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions.begin() as session:
        _open(session, "a", amount=Decimal("0.10"))
        _open(session, "b", amount=Decimal("0.20"))
        _open(session, "c", kind="denial", amount=Decimal("1234567.89"))
    with db_sessions() as session:
        totals = qe.queue_totals(session)
    assert totals == [
        qe.QueueTotal("denial", "open", 1, Decimal("1234567.89")),
        qe.QueueTotal("unmatched_remittance", "open", 2, Decimal("0.30")),
    ]


def test_error_signature_strips_ids_and_amounts() -> None:
    a = error_signature("ERP refused entry pay:3f2a9c1d:17 (amount 123.45): period 2026-01 closed")
    b = error_signature("ERP refused entry pay:99aa01ff:4 (amount 7.00): period 2026-02 closed")
    assert a == b == "ERP refused entry # (amount #): period # closed"
    assert error_signature("unknown account '4010'") == "unknown account '#'"
    assert error_signature("x" * 500) == "x" * 200


def _outbox(session: Session, n: int, error: str) -> OutboxEntry:
    row = OutboxEntry(
        idempotency_key=f"pay:{n}", kind="payment", entry={"lines": []},
        amount=Decimal("100.01"), cash_amount=Decimal("70.00"), trace_number="TRN1",
        status="dead", attempts=2, next_attempt_at=T0, last_error=error, created_at=T0,
    )  # fmt: skip
    session.add(row)
    session.flush()
    session.add(PostingAttempt(outbox_id=row.id, attempted_at=T0, outcome="permanent",
                               error=error, latency_ms=12))  # fmt: skip
    session.flush()
    return row


def test_dead_letters_group_by_signature_and_reopen(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions.begin() as session:
        for n in range(3):
            row = _outbox(session, n, f"period 2026-0{n + 1} is closed for entry pay:{n}")
            attempts = session.scalars(
                select(PostingAttempt).where(PostingAttempt.outbox_id == row.id)
            ).all()
            opened = open_dead_letter(session, row, attempts, now=T0)
        groups = qe.signature_groups(session)
        assert groups == [qe.SignatureGroup("period # is closed for entry #", 3,
                                            Decimal("300.03"), T0)]  # fmt: skip
        item = qe.get_work_item(session, opened.id)
        assert item is not None
        assert item.details["attempts"][0]["outcome"] == "permanent"
        assert item.outbox_id == row.id and item.amount == Decimal("100.01")
        qe.update_work_item(session, item.id, expected_version=1, now=T0, state="resolved")
        again = open_dead_letter(session, row, attempts, now=T0 + timedelta(hours=1))
        assert again == qe.Opened(item.id, False)
        session.refresh(item)
        assert (item.state, item.version) == ("open", 3)


def test_money_and_times_round_trip_in_engine_tables(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions.begin() as session:
        row = _outbox(session, 1, "boom")
        session.add(AdapterHealth(adapter="ledger", updated_at=T0, latency_samples=[3, 5]))
    with db_sessions() as session:
        stored = session.get(OutboxEntry, row.id)
        health = session.get(AdapterHealth, "ledger")
        assert stored is not None and health is not None
        assert (stored.amount, stored.cash_amount, stored.created_at) == (
            Decimal("100.01"), Decimal("70.00"), T0,
        )  # fmt: skip
        assert (health.circuit_state, health.consecutive_failures) == ("closed", 0)


def _audit(session: Session, n: int) -> AuditEntry:
    return qe.append_audit(
        session, at=T0 + timedelta(minutes=n), operator="ana", role="analyst", action="ignore",
        target=f"work_item:{n}", before={"state": "open"}, after={"state": "ignored"},
        reason="not ours", note=f"note {n}",
    )  # fmt: skip


def test_audit_chain_links_and_detects_tampering(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions.begin() as session:
        rows = [_audit(session, n) for n in range(3)]
    assert rows[0].prev_hash == qe.GENESIS_HASH
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    with db_sessions() as session:
        assert qe.verify_audit_chain(session) is None
    with db_sessions.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == rows[1].id).values(note="x"))
    with db_sessions() as session:
        assert qe.verify_audit_chain(session) == rows[1].id


def test_audit_chain_cannot_fork(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions.begin() as session:
        first = _audit(session, 0)
    with pytest.raises(IntegrityError), db_sessions.begin() as session:
        session.execute(
            text(
                "INSERT INTO audit_log (at, operator, role, action, target, reason, note,"
                " prev_hash, hash) VALUES (:at, 'eve', 'analyst', 'x', '', '', '', :prev, :h)"
            ),
            {"at": T0.replace(tzinfo=None), "prev": first.prev_hash, "h": "f" * 64},
        )
