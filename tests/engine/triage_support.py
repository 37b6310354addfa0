"""The triage tests' world: the sample set processed once per backend, and a copy per test.

The sample set is ingested, processed and drained into a real embedded ledger once per backend
(while account 4120 is inactive, so the OA-23 postings die and become dead letters; the account
is then reactivated, the "fix" a retry needs). Each test gets its own copy: on SQLite a copy of
the database file (so every action really commits), on PostgreSQL one outer transaction that is
rolled back afterwards (each action's transaction is a savepoint inside it). Each test gets a
copy of the ledger file too, and drains the postings its actions queued into it with the real
outbox worker.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.engine.pipeline import process_all
from claimsync_console.engine.rules import RulesBook, load_rules, sample_rules_path
from claimsync_console.engine.samples import sample_files
from claimsync_console.engine.triage import (
    ActionResult,
    TriageService,
)
from claimsync_console.engine.worker import DrainReport, drain
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.store.db import make_engine, session_factory
from claimsync_console.store.models import Base
from claimsync_console.store.models_engine import AuditEntry, OutboxEntry, WorkItem
from claimsync_console.store.queries_engine import verify_audit_chain
from tests.store.test_engine_tables import BACKENDS, migrated_once

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DEAD_ACCOUNT = "4120"  # OA-23 (coordination of benefits): inactive while the template drains
D = Decimal


# --------------------------------------------------------------------------- the templates


@dataclass
class Template:
    url: str
    ledger: Path
    dead_letters: int


_TEMPLATES: dict[str, Template] = {}


def _scratch() -> Path:
    """tmpfs when the machine has one: these tests check amounts, not durability."""
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="triage-", dir=shm if shm.is_dir() else None))


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's backup API (WAL content included)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _build(engine: Engine, folder: Path) -> Template:
    sessions = session_factory(engine)
    results = ingest_paths(sessions, sample_files(SAMPLE_DATA), now=NOW)
    assert {r.status for r in results} == {"loaded"}
    process_all(sessions, load_rules(sample_rules_path()), now=NOW)
    ledger = LedgerAdapter({"path": str(folder / "ledger.sqlite3"), "bootstrap_year": 2026})
    ledger.set_account_active(DEAD_ACCOUNT, False)
    report = drain(sessions, ledger, worker_id="template", batch_size=200, now_fn=lambda: NOW)
    ledger.set_account_active(DEAD_ACCOUNT, True)
    assert report.dead > 0 and report.posted > 200
    return Template(engine.url.render_as_string(hide_password=False), ledger.path, report.dead)


def _copy_rows(source: Engine, target: Engine) -> None:
    """Every row of every table, parents first, then each id sequence moved past its rows."""
    with source.connect() as reader, target.begin() as writer:
        for table in Base.metadata.sorted_tables:
            rows = [dict(row) for row in reader.execute(select(table)).mappings()]
            for start in range(0, len(rows), 1000):
                writer.execute(insert(table), rows[start : start + 1000])
            if "id" in table.c and rows:
                writer.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), :top)"),
                    {"top": max(row["id"] for row in rows)},
                )


@pytest.fixture(scope="session", name="sqlite_template")
def sqlite_template_fixture() -> Iterator[Template]:
    """Ingest, process and drain once, on SQLite (shared with test_triage_bulk)."""
    if "sqlite" in _TEMPLATES:
        yield _TEMPLATES["sqlite"]
        return
    folder = _scratch()
    try:
        for engine in migrated_once("sqlite", folder):
            _TEMPLATES["sqlite"] = _build(engine, folder)
        yield _TEMPLATES["sqlite"]
    finally:
        _TEMPLATES.pop("sqlite", None)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", params=BACKENDS, name="template")
def template_fixture(
    request: pytest.FixtureRequest, sqlite_template: Template
) -> Iterator[tuple[str, Template]]:
    """The populated database per backend. PostgreSQL gets the SQLite template's rows copied
    into a migrated schema of its own: the same engine state, without paying for ingest and
    the drain (which the pipeline and worker tests cover on PostgreSQL) a second time."""
    backend: str = request.param
    if backend == "sqlite":
        yield backend, sqlite_template
        return
    if backend in _TEMPLATES:
        yield backend, _TEMPLATES[backend]
        return
    for engine in migrated_once(backend, Path(tempfile.gettempdir())):  # no file on PostgreSQL
        source = make_engine(sqlite_template.url)
        _copy_rows(source, engine)
        source.dispose()
        url = engine.url.render_as_string(hide_password=False)
        _TEMPLATES[backend] = replace(sqlite_template, url=url)
        try:
            yield backend, _TEMPLATES[backend]
        finally:
            _TEMPLATES.pop(backend, None)


# --------------------------------------------------------------------------- one test's world


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    backend: str
    sessions: sessionmaker[Session]
    ledger: LedgerAdapter
    rules: RulesBook
    dead_letters: int
    clock: Clock = field(default_factory=lambda: Clock(NOW))

    def service(
        self, operator: str = "alice", role: str = "analyst", rules: RulesBook | None = None
    ) -> TriageService:
        return TriageService(
            self.sessions, rules or self.rules, operator=operator, role=role, now_fn=self.clock
        )

    def drain(self) -> DrainReport:
        return drain(self.sessions, self.ledger, worker_id="test", batch_size=50,
                     now_fn=self.clock)  # fmt: skip

    def item(self, item_id: int) -> WorkItem:
        with self.sessions() as session:
            found = session.get(WorkItem, item_id)
            assert found is not None
            return found

    def items(self, kind: str, state: str = "open") -> list[WorkItem]:
        with self.sessions() as session:
            query = select(WorkItem).where(WorkItem.kind == kind, WorkItem.state == state)
            return list(session.scalars(query.order_by(WorkItem.id)))

    def outbox(self, outbox_id: int | None) -> OutboxEntry:
        with self.sessions() as session:
            row = session.get(OutboxEntry, outbox_id)
            assert row is not None
            return row

    def audit(self) -> list[AuditEntry]:
        with self.sessions() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))

    def count(self, model: Any) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture(name="env")
def env_fixture(template: tuple[str, Template], tmp_path: Path) -> Iterator[Env]:
    backend, built = template
    folder = _scratch()
    try:
        ledger_path = folder / "ledger.sqlite3"
        copy_sqlite(built.ledger, ledger_path)
        ledger = LedgerAdapter({"path": str(ledger_path)})
        rules = load_rules(sample_rules_path())
        if backend == "sqlite":
            source = Path(built.url.split("///", 1)[1])
            copy_sqlite(source, folder / "claimsync.sqlite3")
            engine = make_engine(f"sqlite+pysqlite:///{folder / 'claimsync.sqlite3'}")
            yield Env(backend, session_factory(engine), ledger, rules, built.dead_letters)
            engine.dispose()
            return
        engine = make_engine(built.url)
        with engine.connect() as connection:
            outer = connection.begin()
            sessions = sessionmaker(
                bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
            )
            try:
                yield Env(backend, sessions, ledger, rules, built.dead_letters)
            finally:
                outer.rollback()
        engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fixed_rules(tmp_path: Path) -> RulesBook:
    """The sample rules with the deliberately unmapped CARCs mapped."""
    text = sample_rules_path().read_text()
    text = text.replace("[adjustments]\n", '[adjustments]\n"CO-B7" = "4100"\n"OA-121" = "4120"\n')
    path = tmp_path / "fixed-rules.toml"
    path.write_text(text)
    return load_rules(path)


def audited(env: Env, result: ActionResult) -> AuditEntry:
    """The result's audit row, checked against the result and the chain."""
    rows = {row.id: row for row in env.audit()}
    row = rows[result.audit_id]
    assert row.work_item_id == result.item_id and row.action == result.action
    assert row.after is not None and row.after["state"] == result.state
    assert row.after["version"] == result.version
    with env.sessions() as session:
        assert verify_audit_chain(session) is None
    return row


def posted_entry(env: Env, outbox_id: int | None) -> Any:
    """The ledger's entry for an outbox row, after the row was drained."""
    row = env.outbox(outbox_id)
    assert row.status == "posted", row.last_error
    found = env.ledger.find_entry(row.idempotency_key)
    assert found is not None
    return found


def denial_item(
    env: Env, *, at_most: Decimal | None = None, over: Decimal | None = None
) -> WorkItem:
    """The first open denial whose amount is in (over, at_most]."""
    for item in env.items("denial"):
        if (at_most is None or item.amount <= at_most) and (over is None or item.amount > over):
            return item
    raise AssertionError("no such denial in the sample")
