"""Snapshots of the dashboard, each queue, the grouped dead letters and the help, at a fixed
size on the fixed store of conftest.py with the clock frozen (``pytest --snapshot-update``
after an intended change; the SVGs show what changed)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from claimsync_console.console.screens.dashboard import DashboardScreen
from claimsync_console.console.screens.queue import QueueScreen
from claimsync_console.engine.console_backend import QUEUES, ConsoleBackend

from .conftest import make_app
from .detail_world import tables_measured

SIZE = (140, 40)


async def _settle(pilot: Pilot[Any], ready: Any) -> None:
    for _ in range(500):
        if ready():
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError("the screen never finished loading")
    await tables_measured(pilot)


def test_dashboard(snap_compare: Any, backend: ConsoleBackend) -> None:
    app = make_app(backend, refresh_seconds=3600)

    async def ready(pilot: Pilot[Any]) -> None:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await _settle(pilot, lambda: screen.polls >= 1 and not screen._loading)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


@pytest.mark.parametrize("queue", list(QUEUES))
def test_queue(snap_compare: Any, backend: ConsoleBackend, queue: str) -> None:
    app = make_app(backend, refresh_seconds=3600)

    async def ready(pilot: Pilot[Any]) -> None:
        app.open_queue(queue)
        await _settle(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.loads >= 1)
        if queue == "denial":  # two marked rows: the count and dollars in the status line
            await pilot.press("space", "space")

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_dead_letters_grouped(snap_compare: Any, backend: ConsoleBackend) -> None:
    app = make_app(backend, refresh_seconds=3600)

    async def ready(pilot: Pilot[Any]) -> None:
        app.open_queue("dead-letter")
        await _settle(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.loads)
        await pilot.press("g")
        await _settle(pilot, lambda: app.screen.loads >= 2)  # type: ignore[attr-defined]

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_help(snap_compare: Any, backend: ConsoleBackend) -> None:
    app = make_app(backend, refresh_seconds=3600)

    async def ready(pilot: Pilot[Any]) -> None:
        await _settle(pilot, lambda: getattr(app.screen, "polls", 0) >= 1)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)
