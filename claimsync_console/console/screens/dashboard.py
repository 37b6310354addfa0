"""The dashboard: live sync status, refreshed without ever blocking a key press.

A thread worker reads the read model (``ConsoleBackend.dashboard``) and posts it back as a
message; only when that message (or a failure) has arrived is the next poll scheduled, so a slow
database stretches the cadence instead of piling up queries. The screen only formats.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Header, Sparkline, Static

from claimsync_console.console.widgets import fmt
from claimsync_console.console.widgets.footer import AdaptiveFooter
from claimsync_console.engine.console_backend import QUEUE_OF_KIND

if TYPE_CHECKING:
    from claimsync_console.console.app import ClaimSyncApp
    from claimsync_console.engine.status import Dashboard

STAGE_TITLES = {
    "billed": "Billed",
    "acknowledged": "Acknowledged",
    "remitted": "Remitted",
    "matched": "Matched",
    "posted": "Posted",
    "in_exception": "In exception",
}


#: The queue table's columns with fixed widths: the longest queue title, counts to 9,999,999
#: (an age bucket to 999,999), dollars to $999,999,999.99. Widths measured from the rows moved
#: the columns at every refresh and, under load, were drawn before they were measured
#: (label-wide cells, seen in CI); 100 columns still hold the table.
QUEUE_COLUMNS = (
    ("queue", "Queue", 21), ("open", "Open", 9), ("amount", "Dollars", 15),
    ("oldest", "Oldest", 7), ("b0", "0-2 d", 7), ("b1", "3-7 d", 7), ("b2", "8-21 d", 7),
    ("b3", "> 21 d", 7),
)  # fmt: skip


class DashboardLoaded(Message):
    def __init__(self, board: Dashboard) -> None:
        super().__init__()
        self.board = board


class DashboardFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class DashboardScreen(Screen[None]):
    """Stages, outbox, postings per minute, adapters, and open work per queue with aging."""

    DEFAULT_CSS: ClassVar[str] = """
    DashboardScreen #queues-note { height: auto; padding: 0 1; color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_queue", "Open queue"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("R", "refresh_now", "Refresh", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.board: Dashboard | None = None
        self.polls = 0  # finished polls, for tests and the status line
        self._loading = False
        self._timer: Timer | None = None
        self._away = False  # another screen is in front; coming back reads at once

    @property
    def claimsync(self) -> ClaimSyncApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="dash-top"):
            yield Static(id="stages", classes="panel")
            yield Static(id="outbox", classes="panel")
            yield Static(id="adapters", classes="panel")
        with Vertical(id="spark-panel", classes="panel"):
            yield Static(id="spark-title")
            yield Sparkline([], id="postings")
        table: DataTable[Any] = DataTable(id="queues", cursor_type="row", zebra_stripes=True)
        yield table
        note = Static(id="queues-note")  # shown when the queues' dollars do not simply add up
        note.display = False
        yield note
        yield Static(id="dash-status")
        yield AdaptiveFooter()

    def on_mount(self) -> None:
        self.title = "ClaimSync"
        self.sub_title = "Dashboard"
        table = self.query_one("#queues", DataTable)
        table.border_title = "Open work by queue"
        table.border_subtitle = "Enter opens a queue · : jumps · ? keys"
        for key, label, width in QUEUE_COLUMNS:
            numbers = key not in ("queue", "oldest")  # headed like their right-aligned cells
            table.add_column(
                Text(label, justify="right" if numbers else "left"), key=key, width=width
            )
        self.query_one("#spark-panel").border_title = "Postings per minute"
        self.poll()

    # -- the refresh loop --------------------------------------------------------------------

    def poll(self) -> None:
        """Start one read in a thread; the next is scheduled when this one reports back.
        While a queue or the detail is in front, no read is made (at a million items the
        dashboard's figures cost seconds of database time the analyst's queue should get);
        coming back reads at once."""
        if self._loading:
            return
        if not self.is_current:
            self._schedule(self.claimsync.refresh_seconds)
            return
        self._loading = True
        self.run_worker(self._load, thread=True, group="dashboard", exit_on_error=False)

    def on_screen_suspend(self) -> None:
        self._away = True

    def on_screen_resume(self) -> None:
        """Only a return reads again: the first resume arrives with the mount's read, and a
        second read then would refill the table under the analyst (and under a snapshot)."""
        if self._away and self.is_mounted:
            self._away = False
            self.poll()

    def _schedule(self, delay: float) -> None:
        """One pending timer at most, so resuming never starts a second refresh loop."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(delay, self.poll)

    def _load(self) -> None:
        try:
            board = self.claimsync.backend.dashboard()
        except Exception as error:  # a database hiccup is shown, and the next poll retries
            self.post_message(DashboardFailed(f"{error.__class__.__name__}: {error}"))
        else:
            self.post_message(DashboardLoaded(board))

    def _schedule_next(self) -> None:
        self._loading = False
        self.polls += 1
        self._schedule(self.claimsync.refresh_seconds)

    @on(DashboardLoaded)
    def _loaded(self, message: DashboardLoaded) -> None:
        self.board = message.board
        self.render_board(message.board)
        self._schedule_next()

    @on(DashboardFailed)
    def _failed(self, message: DashboardFailed) -> None:
        self.query_one("#dash-status", Static).update(
            Text(f"Could not refresh: {message.error} (retrying)", style="bold red")
        )
        self._schedule_next()

    def action_refresh_now(self) -> None:
        self.poll()

    # -- drawing -----------------------------------------------------------------------------

    def render_board(self, board: Dashboard) -> None:
        self.query_one("#stages", Static).update(_stages(board))
        self.query_one("#outbox", Static).update(_outbox(board))
        self.query_one("#adapters", Static).update(_adapters(board))
        per_minute = board.postings_per_minute
        self.query_one("#spark-title", Static).update(
            f"last {len(per_minute)} min: {fmt.count(sum(per_minute))} posted, "
            f"peak {max(per_minute, default=0)}/min, now {per_minute[-1] if per_minute else 0}/min"
        )
        self.query_one("#postings", Sparkline).data = [float(n) for n in per_minute]
        self._fill_queues(board)
        backend = self.claimsync.backend
        self.query_one("#dash-status", Static).update(  # the operator's name, as it is
            fmt.plain(f"as of {fmt.clock(board.at)} · operator {backend.operator} ({backend.role})")
        )

    def _fill_queues(self, board: Dashboard) -> None:
        table = self.query_one("#queues", DataTable)
        cursor = table.cursor_row
        table.clear()
        for tile in board.queues:
            name = QUEUE_OF_KIND.get(tile.kind, tile.kind)
            aging = board.aging_by_queue.get(tile.kind, ())
            buckets = [fmt.count(b.count) for b in aging] or ["0"] * 4
            table.add_row(
                fmt.plain(fmt.QUEUE_TITLES.get(name, name)),
                Text(fmt.count(tile.count), justify="right"),
                Text(fmt.money(tile.amount), justify="right"),
                fmt.age_since(tile.oldest, board.at),
                *(Text(b, justify="right") for b in buckets),
                key=name,
            )
        total = sum(t.count for t in board.queues)
        table.add_row(
            Text("All queues", style="bold"),
            Text(fmt.count(total), justify="right", style="bold"),
            Text(fmt.money(_held(board)), justify="right", style="bold"),
            "",
            *(Text(fmt.count(b.count), justify="right", style="bold") for b in board.aging),
            key="*",
        )  # fmt: skip
        if cursor < table.row_count:
            table.move_cursor(row=cursor, animate=False)
        note = self.query_one("#queues-note", Static)
        counted_once = board.write_off_requests
        note.update(
            f"All queues: write-off requests counted once (−{fmt.money(counted_once)}):"
            " an approval holds the dollars of the item it would write off."
        )
        note.display = counted_once > 0

    # -- keys --------------------------------------------------------------------------------

    def action_cursor_down(self) -> None:
        self.query_one("#queues", DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one("#queues", DataTable).action_cursor_up()

    def action_open_queue(self) -> None:
        table = self.query_one("#queues", DataTable)
        if table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key and key != "*":
            self.claimsync.open_queue(key)

    @on(DataTable.RowSelected, "#queues")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value and event.row_key.value != "*":
            self.claimsync.open_queue(event.row_key.value)


def _grid(title: str) -> Table:
    table = Table.grid(padding=(0, 2), expand=True)
    table.title = title
    table.title_style = "bold"
    table.title_justify = "left"
    table.add_column()
    table.add_column(justify="right")
    table.add_column(justify="right")
    return table


def _stages(board: Dashboard) -> Table:
    table = _grid("Pipeline")
    for stage in board.stages:
        style = "bold yellow" if stage.stage == "in_exception" and stage.count else ""
        table.add_row(
            Text(STAGE_TITLES.get(stage.stage, stage.stage), style=style),
            Text(fmt.count(stage.count), style=style),
            Text(fmt.money(stage.amount), style=style),
        )
    return table


def _outbox(board: Dashboard) -> Table:
    outbox = board.outbox
    table = _grid("Outbox")
    table.add_row("Depth", fmt.count(outbox.depth), fmt.money(outbox.depth_amount))
    table.add_row("Oldest waiting", fmt.age(outbox.oldest_age), "")
    table.add_row("Pending / in flight", f"{outbox.pending:,} / {outbox.in_flight:,}", "")
    table.add_row("Posted", fmt.count(outbox.posted), "")
    dead = Text(fmt.count(outbox.dead), style="bold red" if outbox.dead else "")
    table.add_row("Dead", dead, "")
    return table


CIRCUIT_STYLE = {"closed": "green", "half_open": "yellow", "open": "bold red"}


def _adapters(board: Dashboard) -> Table:
    table = Table.grid(padding=(0, 2), expand=True)
    table.title = "ERP adapters"
    table.title_style = "bold"
    table.title_justify = "left"
    for column in ("Adapter", "Circuit", "Last success", "p50", "p95"):
        table.add_column(column)
    table.add_row(*(Text(c, style="dim") for c in ("adapter", "circuit", "last ok", "p50", "p95")))
    if not board.adapters:
        table.add_row("none yet", "", "", "", "")
    for adapter in board.adapters:
        table.add_row(
            fmt.plain(adapter.adapter),  # a name from the settings: not markup
            Text(adapter.circuit_state.replace("_", "-"),
                 style=CIRCUIT_STYLE.get(adapter.circuit_state, "")),
            fmt.age_since(adapter.last_success_at, board.at) + " ago"
            if adapter.last_success_at else "never",
            fmt.ms(adapter.p50_ms),
            fmt.ms(adapter.p95_ms),
        )  # fmt: skip
    return table


def _held(board: Dashboard) -> Decimal:
    """The dollars in exception, each once: a write-off request's approval holds the money of
    the item it would write off, so the queues' dollars do not simply add up."""
    return sum((t.amount for t in board.queues), start=Decimal(0)) - board.write_off_requests
