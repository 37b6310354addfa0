"""Actions on several marked items (preview, typed confirmation, each failure listed), the
palette, and errors that are not the service's own: always a sentence, never a traceback."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from claimsync_console.console.modals import ConfirmDialog, NoteDialog, WriteOffDialog
from claimsync_console.console.screens.queue import QueueScreen
from claimsync_console.engine.console_backend import ConsoleBackend
from tests.console.conftest import make_app
from tests.console.detail_world import (
    SIZE,
    DetailApp,
    World,
    dialog,
    finished,
    last_audit,
    loaded,
    run,
    settle,
    type_into,
    until,
)

D = Decimal


# --------------------------------------------------------------------------- bulk


def test_bulk_ignore_asks_for_the_typed_count_above_the_setting(world: World) -> None:
    items = world.items("rejected_claim")[:3]
    ids = [i.id for i in items]
    total = sum((i.amount for i in items), D(0))
    app = DetailApp(world.backend(), typed_above=2)

    async def scenario(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.action_runner.start("ignore", ids)
        await dialog(pilot, NoteDialog)
        await type_into(pilot, "#note", "billed again")
        await pilot.press("enter")
        confirm = await dialog(pilot, ConfirmDialog)
        assert f"3 items, ${total:,.2f} in all." in str(confirm.query_one("#summary").render())
        await type_into(pilot, "#typed", "2")
        await pilot.press("enter")
        assert "Type 3 exactly" in str(confirm.query_one("#error").render())
        assert world.item(ids[0]).state == "open"
        await type_into(pilot, "#typed", "3")
        await pilot.press("enter")
        await finished(pilot)

    run(app, scenario)
    assert [world.item(i).state for i in ids] == ["ignored"] * 3
    assert app.said[-1] == ("Ignore: 3 done, 0 failed", "information")
    assert all(last_audit(world, i, "ignore").note == "billed again" for i in ids)


def test_bulk_retry_below_the_setting_asks_yes_or_no_and_posts(world: World) -> None:
    items = world.items("dead_letter")[:2]
    app = DetailApp(world.backend(), typed_above=2)

    async def scenario(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.action_runner.start("retry", [i.id for i in items])
        confirm = await dialog(pilot, ConfirmDialog)
        assert not confirm.query(Input)
        await pilot.press("enter")
        await finished(pilot)

    run(app, scenario)
    assert app.said[-1] == ("Retry: 2 done, 0 failed", "information")
    assert world.drain().posted == 2
    for item in items:
        world.posted(item.outbox_id)
        assert last_audit(world, item.id, "retry").operator == "alice"


def test_bulk_reports_each_failure_and_cancel_changes_nothing(world: World) -> None:
    denial, other = [i for i in world.items("denial") if i.amount <= 500][:2]
    app = DetailApp(world.backend(), typed_above=5)

    async def scenario(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.action_runner.start("write_off", [denial.id, other.id])
        await dialog(pilot, WriteOffDialog)
        await pilot.press("escape")
        await finished(pilot)
        assert world.item(denial.id).state == "open"
        assert app.finished[-1].item_ids == []  # cancelled: a queue keeps its marks
        app.action_runner.start("write_off", [denial.id, other.id])
        await dialog(pilot, WriteOffDialog)
        await type_into(pilot, "#note", "small")
        await pilot.press("enter")
        await dialog(pilot, ConfirmDialog)
        world.backend("bob").triage.ignore(other.id, note="billed again")  # meanwhile
        await pilot.press("enter")
        await finished(pilot, 2)

    run(app, scenario)
    said, severity = app.said[-1]
    assert said.startswith("Write off: 1 done, 1 failed") and severity == "warning"
    assert f"item {other.id}: work item {other.id} is ignored" in said
    assert world.item(denial.id).state == "written_off"


def test_cancelling_a_bulk_confirmation_keeps_the_marks(backend: ConsoleBackend) -> None:
    """Issue: Escape at "Ignore 2 items?" used to clear every mark of the queue."""
    app = make_app(backend)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            app.open_queue("rejected")
            await until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.loads,
                        "the queue loaded")  # fmt: skip
            queue = app.screen
            assert isinstance(queue, QueueScreen)
            await pilot.press("space", "space")
            marked = dict(queue.marked)
            assert len(marked) == 2
            await pilot.press("i")
            await dialog(pilot, NoteDialog)
            await type_into(pilot, "#note", "billed again")
            await pilot.press("enter")
            await dialog(pilot, ConfirmDialog)
            loads = queue.loads
            await pilot.press("escape")
            await until(pilot, lambda: queue.loads > loads and not app.actions.busy, "reloaded")
            assert queue.marked == marked

    asyncio.run(main())


# --------------------------------------------------------------------------- the palette


def test_the_palette_runs_an_action_on_the_item_shown(world: World) -> None:
    item = world.items("rejected_claim")[0]
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Ignore")
        await until(pilot, lambda: _palette_has(pilot, "Ignore"), "the palette offers Ignore")
        await pilot.press("enter")
        await dialog(pilot, NoteDialog)
        await type_into(pilot, "#note", "from the palette")
        await pilot.press("enter")
        await finished(pilot)

    run(app, scenario)
    assert world.item(item.id).state == "ignored"


def _palette_has(pilot: Pilot[Any], name: str) -> bool:
    from textual.command import CommandList

    found = pilot.app.screen.query(CommandList)
    return bool(found) and found.first().option_count > 0


# --------------------------------------------------------------------------- no traceback, ever


def test_a_database_that_went_away_is_said_in_a_sentence(world: World, tmp_path: Any) -> None:
    from claimsync_console.engine.console_backend import ConsoleBackend
    from claimsync_console.store.db import make_engine, session_factory

    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'empty.sqlite3'}")  # no tables
    backend = ConsoleBackend(session_factory(engine), world.rules, operator="alice",
                             role="analyst", clock=world.clock)  # fmt: skip
    app = DetailApp(backend)

    async def scenario(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.action_runner.start("ignore", [1])
        await finished(pilot)

    run(app, scenario)
    engine.dispose()
    said, severity = app.said[-1]
    assert said.startswith("Ignore failed: the database did not answer (OperationalError)")
    assert severity == "error" and "SELECT" not in said and "Traceback" not in said


def test_an_unexpected_error_is_named_not_dumped() -> None:
    from claimsync_console.console.actions import describe_error

    said, severity = describe_error("write_off", ValueError("secret detail"))
    assert said.startswith("Write off failed unexpectedly (ValueError)")
    assert "secret detail" not in said and severity == "error"
