"""The world the detail and action tests run in: the committed sample data, ingested, processed
and drained once into a real embedded ledger (``tests/engine/test_triage``'s template), copied
per test, and a small App that holds a real ConsoleBackend and shows one DetailScreen.

The clock is fixed, so ages, audit times and snapshots do not move. Each test drains the
postings its actions queued into its own copy of the ledger with the real outbox worker.
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from claimsync_console.console.actions import ActionFinished, ActionRunner
from claimsync_console.console.palette import ActionCommands
from claimsync_console.console.screens.detail import DetailScreen
from claimsync_console.engine.console_backend import ConsoleBackend
from claimsync_console.engine.rules import RulesBook, load_rules, sample_rules_path
from claimsync_console.engine.worker import DrainReport, drain
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.store.db import make_engine, session_factory
from claimsync_console.store.models_engine import AuditEntry, OutboxEntry, WorkItem
from tests.engine.triage_support import NOW, Clock, _scratch, copy_sqlite

SIZE = (140, 48)


@dataclass
class World:
    sessions: sessionmaker[Session]
    ledger: LedgerAdapter
    rules: RulesBook
    clock: Clock = field(default_factory=lambda: Clock(NOW))

    def backend(self, operator: str = "alice", role: str = "analyst") -> ConsoleBackend:
        return ConsoleBackend(self.sessions, self.rules, operator=operator, role=role,
                              clock=self.clock)  # fmt: skip

    def drain(self) -> DrainReport:
        return drain(self.sessions, self.ledger, worker_id="console-test", batch_size=50,
                     now_fn=self.clock)  # fmt: skip

    def items(self, kind: str, state: str = "open") -> list[WorkItem]:
        with self.sessions() as session:
            query = select(WorkItem).where(WorkItem.kind == kind, WorkItem.state == state)
            return list(session.scalars(query.order_by(WorkItem.id)))

    def item(self, item_id: int) -> WorkItem:
        with self.sessions() as session:
            found = session.get(WorkItem, item_id)
            assert found is not None
            return found

    def denial(self, at_most: Decimal = Decimal("500.00")) -> WorkItem:
        return next(i for i in self.items("denial") if i.amount <= at_most)

    def audit(self) -> list[AuditEntry]:
        with self.sessions() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))

    def outbox(self, outbox_id: int | None) -> OutboxEntry:
        with self.sessions() as session:
            row = session.get(OutboxEntry, outbox_id)
            assert row is not None
            return row

    def posted(self, outbox_id: int | None) -> Any:
        """The ledger's entry for an outbox row, after the row was drained."""
        row = self.outbox(outbox_id)
        assert row.status == "posted", row.last_error
        found = self.ledger.find_entry(row.idempotency_key)
        assert found is not None
        return found


def last_audit(world: World, item_id: int, action: str) -> Any:
    rows = [r for r in world.audit() if r.work_item_id == item_id and r.action == action]
    assert rows, f"no {action} audit row for item {item_id}"
    return rows[-1]


@pytest.fixture(name="world")
def world_fixture(sqlite_template: Any) -> Iterator[World]:
    """A private copy of the populated database and ledger (SQLite: the console's pilot tests
    check the screens and the wiring; the triage service is tested on PostgreSQL too)."""
    folder = _scratch()
    try:
        copy_sqlite(sqlite_template.ledger, folder / "ledger.sqlite3")
        source = Path(sqlite_template.url.split("///", 1)[1])
        copy_sqlite(source, folder / "claimsync.sqlite3")
        engine = make_engine(f"sqlite+pysqlite:///{folder / 'claimsync.sqlite3'}")
        ledger = LedgerAdapter({"path": str(folder / "ledger.sqlite3")})
        yield World(session_factory(engine), ledger, load_rules(sample_rules_path()))
        engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class DetailApp(App[None]):
    """Holds the backend and the runner as the console app does, and shows one item (or an
    empty screen for runner-only tests). Records notifications and ActionFinished messages."""

    COMMANDS = App.COMMANDS | {ActionCommands}

    def __init__(
        self, backend: ConsoleBackend, item_id: int | None = None, *, typed_above: int = 2
    ) -> None:
        super().__init__()
        self.backend = backend
        self.item_id = item_id
        self.action_runner = ActionRunner(self, typed_above=typed_above)
        self.said: list[tuple[str, str]] = []
        self.finished: list[ActionFinished] = []

    def compose(self) -> ComposeResult:
        yield Static("base")

    def on_mount(self) -> None:
        if self.item_id is not None:
            self.push_screen(DetailScreen(self.item_id))

    def notify(self, message: str, *, severity: Any = "information", **kwargs: Any) -> None:
        self.said.append((message, str(severity)))
        super().notify(message, severity=severity, **kwargs)

    def on_action_finished(self, message: ActionFinished) -> None:
        self.finished.append(message)


async def settle(pilot: Pilot[Any]) -> None:
    """Let every worker finish and the messages they posted be handled."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def until(pilot: Pilot[Any], condition: Callable[[], bool], what: str) -> None:
    """Pump until ``condition`` holds; a bounded number of turns, not a timer."""
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"never happened: {what}")


async def loaded(pilot: Pilot[Any]) -> DetailScreen:
    screen = pilot.app.screen
    assert isinstance(screen, DetailScreen)
    await until(pilot, lambda: screen.view is not None, "the detail loaded")
    await pilot.pause()
    return screen


async def dialog(pilot: Pilot[Any], kind: type) -> Any:
    await until(pilot, lambda: isinstance(pilot.app.screen, kind), f"a {kind.__name__}")
    await tables_measured(pilot)
    return pilot.app.screen


async def tables_measured(pilot: Pilot[Any]) -> None:
    """Pump until every DataTable on screen has measured its rows. A DataTable sizes its
    columns on idle, so on a busy machine a snapshot taken one pause after the rows arrived
    can show label-wide columns (the private flag is the only way to know it has)."""
    await pilot.pause()

    def measured() -> bool:
        tables = pilot.app.screen.query(DataTable)
        return not any(t._require_update_dimensions or t._new_rows for t in tables)

    await until(pilot, measured, "the tables measured their rows")
    await pilot.pause()


async def type_into(pilot: Pilot[Any], selector: str, text: str) -> None:
    field_ = pilot.app.screen.query_one(selector, Input)
    field_.focus()
    field_.value = text
    await pilot.pause()


async def finished(pilot: Pilot[Any], count: int = 1) -> None:
    app = pilot.app
    assert isinstance(app, DetailApp)
    await until(pilot, lambda: len(app.finished) >= count, "the action finished")
    await settle(pilot)


def run(app: App[Any], scenario: Callable[[Pilot[Any]], Awaitable[None]]) -> None:
    """Drive ``app`` headless at the fixed size through ``scenario``."""
    import asyncio

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await scenario(pilot)

    asyncio.run(main())
