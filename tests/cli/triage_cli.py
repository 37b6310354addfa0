"""The world of the triage CLI tests: the committed sample data after one engine run, copied
per test.

Built once per session (like ``tests/engine``'s triage template, but on its own so that the two
can change apart): the samples are ingested, processed and drained into a real embedded ledger
while account 4120 is inactive, so the OA-23 postings die as dead letters; the account is active
again afterwards, the "fix" a retry needs. Each test gets its own copy of both SQLite files and
drives them only through ``claimsync`` commands (typer's CliRunner), with the store and ledger
named by environment variables, as a cron job would. SQLite only: the CLI adds no SQL of its own
over the triage service's, which ``tests/engine/test_triage*.py`` run on PostgreSQL too.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from claimsync_console.cli.app import app
from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.engine.pipeline import process_all
from claimsync_console.engine.rules import RulesBook, load_rules, sample_rules_path
from claimsync_console.engine.runtime import open_store
from claimsync_console.engine.samples import sample_files
from claimsync_console.engine.triage import TriageService
from claimsync_console.engine.worker import drain
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.store.db import make_engine, session_factory
from claimsync_console.store.models_engine import OutboxEntry, WorkItem

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DEAD_ACCOUNT = "4120"  # OA-23: inactive while the template drains
runner = CliRunner()


@dataclass(frozen=True)
class Template:
    store: Path
    ledger: Path
    dead_letters: int


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's backup API (WAL content included)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@pytest.fixture(scope="session", name="cli_template")
def cli_template_fixture() -> Iterator[Template]:
    folder = Path(tempfile.mkdtemp(prefix="claimsync-cli-"))
    store = open_store(f"sqlite+pysqlite:///{folder / 'claimsync.sqlite'}")
    try:
        ingest_paths(store.sessions, sample_files(SAMPLE_DATA), now=NOW)
        process_all(store.sessions, rules(), now=NOW)
        ledger = LedgerAdapter({"path": str(folder / "ledger.sqlite"), "bootstrap_year": 2026})
        ledger.set_account_active(DEAD_ACCOUNT, False)
        report = drain(store.sessions, ledger, worker_id="template", batch_size=200,
                       now_fn=lambda: NOW)  # fmt: skip
        ledger.set_account_active(DEAD_ACCOUNT, True)
        assert report.dead > 1 and report.posted > 200
        store.dispose()
        yield Template(folder / "claimsync.sqlite", ledger.path, report.dead)
    finally:
        store.dispose()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Cli:
    """One test's copy of the store and the ledger, and ``claimsync`` pointed at them."""

    folder: Path
    url: str
    ledger_path: Path
    sessions: sessionmaker[Session]
    dead_letters: int

    def env(self, **extra: str | None) -> dict[str, str | None]:
        base: dict[str, str | None] = {
            "CLAIMSYNC_DATA_DIR": str(self.folder),
            "CLAIMSYNC_DATABASE_URL": self.url,
            "CLAIMSYNC_LEDGER_PATH": str(self.ledger_path),
            "CLAIMSYNC_CONFIG": None,
            "CLAIMSYNC_RULES_PATH": None,
            "CLAIMSYNC_OPERATOR": "alice",
            "CLAIMSYNC_ROLE": "analyst",
        }
        base.update(extra)
        return base

    def run(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        """``claimsync ARGS`` as ``alice`` (analyst) unless ``env`` says otherwise."""
        return runner.invoke(app, list(args), env=self.env(**env), input=input)

    def json(self, *args: str, code: int = 0, **env: str | None) -> Any:
        result = self.run(*args, "--json", **env)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    # -- looking behind the CLI's back ----------------------------------------------------------

    def items(self, kind: str, state: str = "open") -> list[WorkItem]:
        with self.sessions() as session:
            query = select(WorkItem).where(WorkItem.kind == kind, WorkItem.state == state)
            return list(session.scalars(query.order_by(WorkItem.created_at, WorkItem.id)))

    def item(self, item_id: int) -> WorkItem:
        with self.sessions() as session:
            found = session.get(WorkItem, item_id)
            assert found is not None
            return found

    def outbox(self, outbox_id: int | None) -> OutboxEntry:
        with self.sessions() as session:
            row = session.get(OutboxEntry, outbox_id)
            assert row is not None
            return row

    def ledger(self) -> LedgerAdapter:
        return LedgerAdapter({"path": str(self.ledger_path)})

    def service(self, operator: str, role: str = "analyst") -> TriageService:
        return TriageService(self.sessions, rules(), operator=operator, role=role)


def rules() -> RulesBook:
    return load_rules(sample_rules_path())


def fixed_rules_file(folder: Path) -> Path:
    """The sample rules with the deliberately unmapped CARCs mapped (a "rules fix")."""
    text = sample_rules_path().read_text()
    text = text.replace("[adjustments]\n", '[adjustments]\n"CO-B7" = "4100"\n"OA-121" = "4120"\n')
    path = folder / "fixed-rules.toml"
    path.write_text(text)
    return path


@pytest.fixture(name="cli")
def cli_fixture(cli_template: Template, tmp_path: Path) -> Iterator[Cli]:
    copy_sqlite(cli_template.store, tmp_path / "claimsync.sqlite")
    copy_sqlite(cli_template.ledger, tmp_path / "ledger.sqlite")
    url = f"sqlite+pysqlite:///{tmp_path / 'claimsync.sqlite'}"
    engine = make_engine(url)
    try:
        yield Cli(
            tmp_path, url, tmp_path / "ledger.sqlite", session_factory(engine),
            cli_template.dead_letters,
        )  # fmt: skip
    finally:
        engine.dispose()


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stdout + result.stderr
