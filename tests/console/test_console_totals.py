"""Dollars that do not simply add up are explained where they are shown: the dashboard's "All
queues" row counts a write-off request's dollars once (its approval holds the money of the item
it would write off), and an item written off in parts says what was written off in all, not
only its last part."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from claimsync_console.console.screens.dashboard import DashboardScreen
from claimsync_console.console.screens.detail import DetailScreen
from claimsync_console.engine.console_backend import ConsoleBackend
from tests.console.conftest import make_app
from tests.console.detail_world import DetailApp, World, loaded, run, until

D = Decimal


def text_of(widget: Static) -> str:
    console = Console(width=300, record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.export_text()


def dashboard_note(backend: ConsoleBackend) -> tuple[bool, str, Any]:
    """(shown, text, board) of the note under the dashboard's queue table."""
    app = make_app(backend, refresh_seconds=3600)
    found: list[Any] = []

    async def scenario(pilot: Pilot[Any]) -> None:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await until(pilot, lambda: screen.polls >= 1, "the dashboard loaded")
        note = screen.query_one("#queues-note", Static)
        found.extend((bool(note.display), text_of(note), screen.board))

    run(app, scenario)
    return found[0], found[1], found[2]


def test_the_dashboard_says_why_all_queues_is_less_than_its_rows(world: World) -> None:
    denial = next(i for i in world.items("denial") if i.amount > 500)
    asked = world.backend("alice", "analyst").triage.write_off(
        denial.id, reason="CO-197", note="payer will never pay this"
    )
    assert asked.action == "write_off_requested"
    shown, said, board = dashboard_note(world.backend())
    rows = sum((t.amount for t in board.queues), D(0))
    held = next(s.amount for s in board.stages if s.stage == "in_exception")
    assert shown and rows - held >= denial.amount
    assert f"All queues: write-off requests counted once (−${rows - held:,.2f})" in said


def test_no_note_when_the_queues_add_up(backend: ConsoleBackend) -> None:
    shown, _, board = dashboard_note(backend)
    held = next(s.amount for s in board.stages if s.stage == "in_exception")
    assert sum((t.amount for t in board.queues), D(0)) == held
    assert not shown


def header(world: World, item_id: int) -> str:
    app = DetailApp(world.backend(), item_id)
    said: list[str] = []

    async def scenario(pilot: Pilot[Any]) -> None:
        screen: DetailScreen = await loaded(pilot)
        said.append(text_of(screen.query_one("#title", Static)))

    run(app, scenario)
    return said[0]


def test_an_item_written_off_in_parts_says_what_was_written_off_in_all(world: World) -> None:
    item = world.denial()
    triage = world.backend().triage
    triage.write_off(item.id, reason="CO-50", note="part", amount="12.00")
    rest = item.amount - D("12.00")
    assert f"${rest:,.2f} open, $12.00 written off ·" in header(world, item.id)
    triage.write_off(item.id, reason="CO-50", note="the rest")
    shown = header(world, item.id)
    assert f"written_off · written off ${item.amount:,.2f} in 2 parts ·" in shown
    assert f"${rest:,.2f}" not in shown  # the last part alone is not the item's amount
