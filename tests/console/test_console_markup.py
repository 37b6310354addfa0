"""A payer's data is shown as it is, never read as Rich/Textual markup.

An 835 whose patient control number is ``ZZ[/b]9`` crashed the console (``MarkupError``) when
its queue opened, and an ERP error ``[unknown_account] unknown account(s): 4150`` lost its first
word (read as a style tag). These tests put such text into items of the fixed store (payer
name, patient control number, error, error signature) and open the queue, the dead letters
(listed and grouped), the detail and the dashboard: nothing may raise, and what a cell or a
panel shows is the text with its brackets.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from textual.pilot import Pilot
from textual.widgets import DataTable, Static
from textual.widgets._data_table import default_cell_formatter

from claimsync_console.console.screens.dashboard import DashboardScreen
from claimsync_console.console.screens.detail import DetailScreen
from claimsync_console.console.screens.queue import QueueScreen
from claimsync_console.console.widgets.queue_rows import LoadFailed, group_cells
from claimsync_console.engine.console_backend import ConsoleBackend, QueueFilter
from claimsync_console.store.models_engine import AdapterHealth, WorkItem

from .conftest import make_app
from .test_console_app import open_queue, sync, until

SIZE = (140, 40)
PAYER = "[bold]x[/bold] HEALTH"
PCN = "ZZ[/b]9"
UNMATCHED_ERROR = "no claim for [/b] [unknown_account]"
DEAD_ERROR = "[unknown_account] unknown account(s): 4150"
SIGNATURE = "[unknown_account]"
ADAPTER = "[/b]ledger"


def _first(sessions: sessionmaker[Session], kind: str) -> int:
    with sessions() as session:
        query = select(WorkItem.id).where(WorkItem.kind == kind).order_by(WorkItem.id)
        return int(session.scalars(query).first())  # type: ignore[arg-type]


@pytest.fixture
def marked(console_sessions: sessionmaker[Session]) -> dict[str, int]:
    """One unmatched remittance and one dead letter with bracketed data; their ids."""
    ids = {
        "unmatched": _first(console_sessions, "unmatched_remittance"),
        "dead": _first(console_sessions, "dead_letter"),
    }
    with console_sessions.begin() as session:
        session.execute(
            update(WorkItem).where(WorkItem.id == ids["unmatched"]).values(
                payer_name=PAYER, patient_control_number=PCN, error=UNMATCHED_ERROR,
            )
        )  # fmt: skip
        session.execute(
            update(WorkItem).where(WorkItem.id == ids["dead"]).values(
                payer_name=PAYER, patient_control_number=PCN, error=DEAD_ERROR,
                error_signature=SIGNATURE,
            )
        )  # fmt: skip
        session.execute(update(AdapterHealth).values(adapter=ADAPTER))
    return ids


def shown(cell: Any) -> str:
    """What a DataTable shows for a cell: its own formatter's text (a str is read as markup)."""
    return default_cell_formatter(cell).plain  # type: ignore[union-attr]


def row_text(table: DataTable[Any], key: str) -> list[str]:
    return [shown(cell) for cell in table.get_row(key)]


def rendered(renderable: Any) -> str:
    """A Static's content as a Rich console would print it (markup on, as Textual's is)."""
    console = Console(file=io.StringIO(), width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def static_text(screen: Any, selector: str) -> str:
    content = screen.query_one(selector, Static).content
    return content if isinstance(content, str) else rendered(content)


async def _check_rows(pilot: Pilot[None], screen: QueueScreen, key: str, error: str) -> None:
    table = screen.query_one(DataTable)
    cells = row_text(table, key)
    assert PAYER in cells
    assert PCN in cells
    assert error in cells
    await pilot.pause()  # drawn: a markup error would have taken the app down here


@sync
async def test_the_unmatched_queue_shows_bracketed_data_as_it_is(
    backend: ConsoleBackend, marked: dict[str, int]
) -> None:
    app = make_app(backend, refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "unmatched")
        await _check_rows(pilot, screen, str(marked["unmatched"]), UNMATCHED_ERROR)
        await pilot.press("space")  # the mark redraws the row's first cell
        await pilot.pause()
    assert app.return_code in (None, 0)


@sync
async def test_dead_letters_show_the_erp_error_with_its_brackets(
    backend: ConsoleBackend, marked: dict[str, int]
) -> None:
    app = make_app(backend, refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "dead-letter")
        await _check_rows(pilot, screen, str(marked["dead"]), DEAD_ERROR)
        loads = screen.loads
        await pilot.press("g")
        await until(pilot, lambda: screen.loads > loads)
        groups = [row_text(screen.query_one(DataTable), f"group:{n}")
                  for n in range(len(screen.groups))]  # fmt: skip
        assert [SIGNATURE, DEAD_ERROR] in [cells[3:] for cells in groups]
        await pilot.pause()
    assert app.return_code in (None, 0)


def test_a_bracketed_erp_error_keeps_its_first_word(
    backend: ConsoleBackend, marked: dict[str, int]
) -> None:
    """No crash here (no closing tag): the old damage was quieter, ``[unknown_account]`` read
    as a style and dropped, so the signature cell was empty and the example lost a word."""
    group = next(
        g for g in backend.error_groups("dead-letter", QueueFilter())
        if g.error_signature == SIGNATURE
    )  # fmt: skip
    cells = [shown(cell) for cell in group_cells(group, backend.now())]
    assert cells[3:] == [SIGNATURE, DEAD_ERROR]


@sync
async def test_the_detail_shows_bracketed_data_as_it_is(
    backend: ConsoleBackend, marked: dict[str, int]
) -> None:
    app = make_app(backend, refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        for item_id, error in (
            (marked["unmatched"], UNMATCHED_ERROR),
            (marked["dead"], DEAD_ERROR),
        ):
            app.open_detail(item_id)
            await until(pilot, lambda: isinstance(app.screen, DetailScreen)
                        and app.screen.view is not None)  # fmt: skip
            screen = app.screen
            await pilot.pause()
            assert PAYER in static_text(screen, "#title")
            summary = static_text(screen, "#summary")
            assert error in summary
            assert PCN in summary
            app.pop_screen()
            await pilot.pause()
    assert app.return_code in (None, 0)


@sync
async def test_the_dashboard_shows_an_adapter_name_as_it_is(
    backend: ConsoleBackend, marked: dict[str, int]
) -> None:
    app = make_app(backend, refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await until(pilot, lambda: screen.polls >= 1)
        assert ADAPTER in static_text(screen, "#adapters")
        await pilot.pause()
    assert app.return_code in (None, 0)


@sync
async def test_a_notification_carrying_an_error_is_not_read_as_markup(
    backend: ConsoleBackend, marked: dict[str, int]
) -> None:
    app = make_app(backend, refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queue(pilot, app, "dead-letter")
        screen.post_message(LoadFailed(screen._seq, f"ERP said: {DEAD_ERROR} [/b]"))
        await until(pilot, lambda: bool(app._notifications))
        await pilot.pause()  # the toast is drawn
        notice = list(app._notifications)[-1]
        assert notice.message == f"ERP said: {DEAD_ERROR} [/b]"
        assert notice.markup is False
    assert app.return_code in (None, 0)
