"""Regenerate the console screenshots here: ``python docs/screenshots/make_screenshots.py``.

Every screen is drawn headless (``App.run_test``) at 140x40 on the tests' fixed data with the
clock frozen, so a re-run after a change to the console only changes what the change changed.
The grouped dead letters and the help use the console tests' small store (three dead-letter
signatures); the dashboard, the denial queue, the detail and the write-off dialog use the sample
X12 set (a full pipeline, real segments, a real denial). Each SVG gets a PNG next to it when
``rsvg-convert`` is installed.

It runs itself through pytest only to reuse the tests' fixtures (temporary databases).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root, for ``tests``

from claimsync_console.console.app import ClaimSyncApp  # noqa: E402
from claimsync_console.console.modals import WriteOffDialog  # noqa: E402
from claimsync_console.console.screens.detail import DetailScreen  # noqa: E402
from claimsync_console.console.screens.queue import QueueScreen  # noqa: E402
from claimsync_console.engine.console_backend import ConsoleBackend  # noqa: E402
from tests.console.conftest import backend, console_sessions  # noqa: E402
from tests.console.detail_world import World, tables_measured, world_fixture  # noqa: E402
from tests.engine.triage_support import sqlite_template_fixture  # noqa: E402

__all__ = ["backend", "console_sessions", "sqlite_template_fixture", "world_fixture"]

SIZE = (140, 40)
Steps = Callable[[ClaimSyncApp, Pilot[Any]], Awaitable[None]]


async def until(pilot: Pilot[Any], condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            await tables_measured(pilot)
            return
        await pilot.pause(0.02)
    raise AssertionError("the screen never got there")


async def shoot(app: ClaimSyncApp, name: str, steps: Steps) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await steps(app, pilot)
        await pilot.pause()
        svg = HERE / f"{name}.svg"
        app.save_screenshot(str(svg))
    if shutil.which("rsvg-convert"):
        png = svg.with_suffix(".png")
        subprocess.run(["rsvg-convert", str(svg), "-o", str(png)], check=True)
    print(f"wrote {svg.relative_to(HERE.parents[1])}")


async def queue(app: ClaimSyncApp, pilot: Pilot[Any], name: str) -> QueueScreen:
    app.open_queue(name)
    await until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.loads > 0)
    assert isinstance(app.screen, QueueScreen)
    return app.screen


def test_dead_letters_and_help(backend: ConsoleBackend) -> None:
    """The tests' small store: it has dead letters under three signatures."""

    def app() -> ClaimSyncApp:
        return ClaimSyncApp(backend, refresh_seconds=3600)

    async def grouped(app: ClaimSyncApp, pilot: Pilot[Any]) -> None:
        screen = await queue(app, pilot, "dead-letter")
        await pilot.press("g")
        await until(pilot, lambda: screen.loads >= 2)

    async def keys(app: ClaimSyncApp, pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: getattr(app.screen, "polls", 0) >= 1)
        await pilot.press("question_mark")

    asyncio.run(shoot(app(), "console-dead-letters-grouped", grouped))
    asyncio.run(shoot(app(), "console-help", keys))


def test_sample_data_screens(world: World) -> None:
    """The sample X12 set, ingested and posted: a full pipeline, real segments, real denials."""
    denial = world.denial().id

    def app() -> ClaimSyncApp:
        return ClaimSyncApp(world.backend("dana"), refresh_seconds=3600)

    async def dashboard(app: ClaimSyncApp, pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: getattr(app.screen, "polls", 0) >= 1)

    async def denials(app: ClaimSyncApp, pilot: Pilot[Any]) -> None:
        await queue(app, pilot, "denial")
        await pilot.press("space", "space")  # two marked rows: count and dollars below

    async def detail(app: ClaimSyncApp, pilot: Pilot[Any]) -> None:
        app.open_detail(denial)
        await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.view)

    async def write_off(app: ClaimSyncApp, pilot: Pilot[Any]) -> None:
        await detail(app, pilot)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WriteOffDialog))

    asyncio.run(shoot(app(), "console-dashboard", dashboard))
    asyncio.run(shoot(app(), "console-queue-denials", denials))
    asyncio.run(shoot(app(), "console-detail", detail))
    asyncio.run(shoot(app(), "console-write-off", write_off))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
