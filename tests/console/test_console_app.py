"""The console driven as an analyst would, headless (``App.run_test``): the dashboard refreshes,
queues page, sort, filter, mark and group, ``:`` jumps and ``?`` helps.

Waits are bounded loops on a condition (a load finished), never assertions about time.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, OptionList, Static

from claimsync_console.console.app import ClaimSyncApp
from claimsync_console.console.screens.dashboard import DashboardScreen
from claimsync_console.console.screens.modals import HelpScreen, JumpScreen
from claimsync_console.console.screens.queue import QueueScreen
from claimsync_console.engine.console_backend import ConsoleBackend
from claimsync_console.store.queries_engine import open_work_items

from .conftest import NOW, make_app

SIZE = (140, 40)


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body on a fresh event loop (no pytest async plugin needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def until(pilot: Pilot[None], condition: Callable[[], bool], steps: int = 300) -> None:
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("the console never got there")


async def open_queue(pilot: Pilot[None], app: ClaimSyncApp, name: str) -> QueueScreen:
    app.open_queue(name)
    await until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.loads > 0)
    screen = app.screen
    assert isinstance(screen, QueueScreen)
    return screen


async def loaded(pilot: Pilot[None], screen: QueueScreen, before: int) -> None:
    await until(pilot, lambda: screen.loads > before and not screen._busy)


def ids(screen: QueueScreen) -> list[int]:
    return [row.id for row in screen.page.rows] if screen.page else []


@sync
async def test_dashboard_refreshes_on_its_own(
    backend: ConsoleBackend, console_sessions: sessionmaker[Session]
) -> None:
    app = make_app(backend, refresh_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await until(pilot, lambda: screen.polls >= 2)
        table = screen.query_one("#queues", DataTable)
        assert str(table.get_cell("dead-letter", "open")) == "9"
        with console_sessions.begin() as session:
            open_work_items(session, [{"kind": "dead_letter", "source_key": "new-1",
                                       "amount": Decimal("5.00")}], now=NOW)  # fmt: skip
        polls = screen.polls
        await until(pilot, lambda: screen.polls >= polls + 2)
        assert str(table.get_cell("dead-letter", "open")) == "10"
        # input is never blocked by the refresh loop: keys still move the cursor
        await pilot.press("j", "j")
        assert table.cursor_row == 2


@sync
async def test_the_first_resume_does_not_read_the_dashboard_twice(backend: ConsoleBackend) -> None:
    """On a busy machine the mount's read can finish before the first ScreenResume is handled;
    a second read then refilled the table under a snapshot (CI, stop 7). Only a return from
    another screen reads again."""
    app = make_app(backend, refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await until(pilot, lambda: screen.polls >= 1 and not screen._loading)
        screen.post_message(events.ScreenResume())  # the late first resume
        for _ in range(10):
            await pilot.pause(0.02)
        assert screen.polls == 1 and not screen._loading


@sync
async def test_a_queue_reads_once_on_opening_and_again_on_return(backend: ConsoleBackend) -> None:
    """The late first ScreenResume must not start a second read (the same race as the
    dashboard's); coming back from another screen must."""
    app = make_app(backend, refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "denial")
        await until(pilot, lambda: not screen._busy)
        screen.post_message(events.ScreenResume())  # the late first resume
        for _ in range(10):
            await pilot.pause(0.02)
        assert screen.loads == 1
        app.open_dashboard()
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        app.open_queue("denial")
        await until(pilot, lambda: screen.loads == 2 and not screen._busy)


@sync
async def test_enter_on_the_dashboard_opens_that_queue(backend: ConsoleBackend) -> None:
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await until(pilot, lambda: screen.polls >= 1)
        await pilot.press("j", "j", "enter")  # unmatched, mapping, dead letters
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        assert app.current_mode == "dead-letter"


@sync
async def test_paging_past_the_last_row_and_back(backend: ConsoleBackend) -> None:
    app = make_app(backend, page_size=5)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "unmatched")
        first = ids(screen)
        assert len(first) == 5 and screen.total == 12
        count = screen.loads
        await pilot.press(*["j"] * 5)  # four moves, then past the last row
        await loaded(pilot, screen, count)
        assert screen.page_number == 2 and not set(ids(screen)) & set(first)
        await pilot.press("n")
        await loaded(pilot, screen, count + 1)
        assert screen.page_number == 3 and len(ids(screen)) == 2
        await pilot.press("p")
        await loaded(pilot, screen, count + 2)
        count = screen.loads
        await pilot.press("k")  # cursor at the first row (moved to the last on "p")
        assert screen.page_number == 2
        await pilot.press(*["k"] * 5)
        await loaded(pilot, screen, count)
        assert screen.page_number == 1 and ids(screen) == first
        status = str(screen.query_one("#queue-status", Static).render())
        assert "page 1" in status


@sync
async def test_sorting_by_key_and_by_header_click(backend: ConsoleBackend) -> None:
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "denial")
        count = screen.loads
        await pilot.press("s")  # age -> payer
        await loaded(pilot, screen, count)
        assert screen.sort == "payer"
        payers = [row.payer_id for row in screen.page.rows]  # type: ignore[union-attr]
        assert payers == sorted(payers)
        count = screen.loads
        table = screen.query_one(DataTable)
        index, column = next(
            (i, c) for i, c in enumerate(table.ordered_columns) if c.key.value == "amount"
        )
        # what a click on the Amount header posts (the click itself is Textual's business)
        table.post_message(DataTable.HeaderSelected(table, column.key, index, column.label))
        await loaded(pilot, screen, count)
        amounts = [row.amount for row in screen.page.rows]  # type: ignore[union-attr]
        assert screen.sort == "amount" and amounts == sorted(amounts)
        count = screen.loads
        await pilot.press("S")
        await loaded(pilot, screen, count)
        amounts = [row.amount for row in screen.page.rows]  # type: ignore[union-attr]
        assert amounts == sorted(amounts, reverse=True)


@sync
async def test_filter_by_payer_amount_and_text(backend: ConsoleBackend) -> None:
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "unmatched")
        count = screen.loads
        await pilot.press("slash")
        await pilot.press(*"payer:smpae >100")
        await pilot.press("enter")
        await loaded(pilot, screen, count)
        rows = screen.page.rows  # type: ignore[union-attr]
        assert rows and all(r.payer_id == "SMPAE" and r.amount >= 100 for r in rows)
        assert "filter: payer:smpae" in str(screen.query_one("#queue-title", Static).render())
        # a bad range says why and keeps the filter as it was
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"9..1", "enter")
        await pilot.pause()
        assert screen.filter.payer == "smpae"
        assert any("empty" in n.message for n in app._notifications)
        count = screen.loads
        await pilot.press("escape", "escape")  # close the box, then clear the filter
        await loaded(pilot, screen, count)
        assert screen.filter.empty and len(ids(screen)) == 12


@sync
async def test_space_marks_rows_with_count_and_dollars(backend: ConsoleBackend) -> None:
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "approval")
        rows = screen.page.rows  # type: ignore[union-attr]
        await pilot.press("space", "space")
        assert screen.marked == {rows[0].id: rows[0].amount, rows[1].id: rows[1].amount}
        status = str(screen.query_one("#queue-status", Static).render())
        total = rows[0].amount + rows[1].amount
        assert f"marked 2 · ${total:,.2f}" in status
        assert screen.selection() == sorted([rows[0].id, rows[1].id])
        await pilot.press("k", "space")  # unmark the second
        assert list(screen.marked) == [rows[0].id]


@sync
async def test_dead_letters_group_by_signature_and_drill_down(backend: ConsoleBackend) -> None:
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "dead-letter")
        count = screen.loads
        await pilot.press("g")
        await loaded(pilot, screen, count)
        table = screen.query_one(DataTable)
        assert screen.grouped and table.row_count == 3
        assert str(table.get_cell("group:0", "signature")) == "erp-422-account-closed"
        count = screen.loads
        await pilot.press("enter")
        await loaded(pilot, screen, count)
        assert not screen.grouped and screen.filter.error_signature == "erp-422-account-closed"
        assert len(ids(screen)) == 5


@sync
async def test_grouping_is_only_for_dead_letters(backend: ConsoleBackend) -> None:
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "denial")
        await pilot.press("g")
        assert not screen.grouped
        assert any("dead letters" in n.message for n in app._notifications)


@sync
async def test_colon_jumps_to_a_queue_and_keeps_each_queue_state(
    backend: ConsoleBackend,
) -> None:
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "denial")
        await pilot.press("space")
        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.screen, JumpScreen))
        await pilot.press(*"dead", "enter")
        await until(pilot, lambda: app.current_mode == "dead-letter")
        await pilot.press("colon", *"denial", "enter")
        await until(pilot, lambda: app.current_mode == "denial")
        assert app.screen is screen and len(screen.marked) == 1
        await pilot.press("colon", *"dash", "enter")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))


@sync
async def test_colon_opens_any_item_by_its_number(backend: ConsoleBackend) -> None:
    """A written-off item is in no queue; ``:`` and its number still open it (to reverse)."""
    from claimsync_console.console.screens.detail import DetailScreen

    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "denial")
        wanted = ids(screen)[0]
        await pilot.press("colon", *f"#{wanted}", "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert app.screen.item_id == wanted  # type: ignore[attr-defined]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press("colon", *"987654", "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        summary = app.screen.query_one("#summary", Static)
        await until(pilot, lambda: "987654" in str(summary.render()))


@sync
async def test_question_mark_shows_the_keys(backend: ConsoleBackend) -> None:
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))


@sync
async def test_ages_come_from_the_backend_clock(backend: ConsoleBackend) -> None:
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "unmatched")
        table = screen.query_one(DataTable)
        oldest = screen.page.rows[0]  # type: ignore[union-attr]
        assert NOW - oldest.created_at >= timedelta(days=10)
        assert str(table.get_cell(str(oldest.id), "age")).endswith("d") or "d " in str(
            table.get_cell(str(oldest.id), "age")
        )


@sync
async def test_dashboard_rests_while_a_queue_is_in_front(backend: ConsoleBackend) -> None:
    app = make_app(backend, refresh_seconds=0.02)
    async with app.run_test(size=SIZE) as pilot:
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        await until(pilot, lambda: dashboard.polls >= 2)
        await open_queue(pilot, app, "denial")
        await until(pilot, lambda: not dashboard._loading)
        polls = dashboard.polls
        for _ in range(10):  # several refresh periods pass with the queue in front
            await pilot.pause(0.03)
        assert dashboard.polls == polls
        app.open_dashboard()
        await until(pilot, lambda: dashboard.polls > polls)


@sync
async def test_action_key_runs_through_the_triage_service_and_the_queue_reloads(
    backend: ConsoleBackend, console_sessions: sessionmaker[Session]
) -> None:
    from sqlalchemy import select

    from claimsync_console.store.models_engine import AuditEntry, WorkItem

    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "denial")
        first = ids(screen)[0]
        count = screen.loads
        await pilot.press("i")  # ignore: the runner asks for a note
        await until(pilot, lambda: app.screen is not screen)
        await pilot.press(*"duplicate of a paid claim", "enter")
        await until(pilot, lambda: screen.loads > count and app.screen is screen)
        await until(pilot, lambda: first not in ids(screen))
    with console_sessions() as session:
        item = session.get(WorkItem, first)
        assert item is not None and item.state == "ignored"
        audit = session.scalars(select(AuditEntry).where(AuditEntry.work_item_id == first)).all()
        assert [a.action for a in audit] == ["ignore"] and audit[0].operator == "dana"


@sync
async def test_the_palette_lists_each_action_once_and_the_runner_uses_the_setting(
    backend: ConsoleBackend,
) -> None:
    backend.settings = replace(backend.settings, bulk_confirm_typed_above=7)
    app = make_app(backend, refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        await open_queue(pilot, app, "denial")
        assert app.actions.typed_above == 7
        await pilot.press("ctrl+p")
        await until(pilot, lambda: bool(app.screen.query("CommandList")))
        commands = app.screen.query_one("CommandList", OptionList)
        await until(pilot, lambda: commands.option_count > 10)
        await pilot.pause(0.2)  # the providers answer one after another
        names = [
            str(commands.get_option_at_index(i).prompt).split("\n")[0]
            for i in range(commands.option_count)
        ]
        for label in ("Remap", "Approve", "Retry", "Write off", "Reverse", "Ignore"):
            assert names.count(label) == 1, names
        assert "Keys (?)" in names and "Keys" not in names  # ours, not Textual's panel


@sync
async def test_at_100_columns_the_queue_footer_still_shows_back_help_and_quit(
    backend: ConsoleBackend,
) -> None:
    from textual.widgets._footer import FooterKey

    app = make_app(backend)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_queue(pilot, app, "denial")
        await pilot.pause()
        keys = {k.key: k for k in app.screen.query(FooterKey)}
        for key in ("escape", "question_mark", "colon", "q", "g", "slash"):
            assert key in keys and keys[key].region.right <= 100, key
            assert keys[key].region.width > 0, key


@sync
async def test_an_idle_queue_shows_what_others_changed(
    backend: ConsoleBackend, console_sessions: sessionmaker[Session]
) -> None:
    """Another analyst ignores an item (here: straight through the service): an idle queue
    re-reads its page and the item goes, with no key pressed."""
    app = make_app(backend, queue_refresh_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "denial")
        gone = ids(screen)[1]
        backend.triage.ignore(gone, note="someone else took it")
        await until(pilot, lambda: gone not in ids(screen))
        assert screen.loads >= 2
