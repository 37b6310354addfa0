"""One work queue as a table that only ever holds the page on screen.

Every read goes through a thread worker (``ConsoleBackend.queue_page``) and comes back as a
message tagged with a request number, so a key press is never blocked by the database and a
stale answer (the analyst typed on) is dropped. Paging is by keyset: the page's first and last
row keys ask for the neighbouring page, so page 4,000 costs what page 1 does. Marks are kept by
item id with the amount seen, so the marked count and dollars survive paging and re-sorting.
"""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from claimsync_console.console.widgets import fmt
from claimsync_console.console.widgets.footer import AdaptiveFooter
from claimsync_console.console.widgets.queue_rows import (
    ACTION_KEYS,
    COLUMNS,
    GROUP_COLUMNS,
    SORT_WORDS,
    GroupsLoaded,
    LoadFailed,
    PageLoaded,
    group_cells,
    message_of,
    row_cells,
    status_line,
    title_line,
)
from claimsync_console.console.widgets.queue_selection import QueueSelection
from claimsync_console.console.widgets.queue_table import QueueTable
from claimsync_console.engine.console_backend import (
    SORTS,
    ErrorGroup,
    QueueFilter,
    QueuePage,
    QueueRow,
    UsageError,
)

if TYPE_CHECKING:
    from claimsync_console.console.app import ClaimSyncApp

#: bound, in the help and the palette, but not in the footer: at 100 columns it hid Back, Help
#: and Quit. A queue holds open items, which have nothing to reverse; ignoring is rare.
FOOTER_HIDES = frozenset({"v", "i"})
SPINNER_AFTER = 0.25  # seconds a read may take before the table shows it is loading
IDLE_BEFORE_REFRESH = 5.0  # seconds without a key before the page is re-read


class QueueScreen(QueueSelection, Screen[None]):
    """A queue: sort, filter, mark, page; Enter opens the item; action keys act on the marked
    rows (or the current one) through the app's action runner."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_mark", "Mark", key_display="␣"),
        *(
            Binding(key, f"act('{name}')", label, show=key not in FOOTER_HIDES)
            for key, name, label in ACTION_KEYS
        ),
        Binding("slash", "filter", "Filter"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("g", "toggle_groups", "Group"),
        Binding("n", "page('next')", "Next page", show=False),
        Binding("p", "page('previous')", "Prev page", show=False),
        Binding("R", "reload", "Reload", show=False),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, queue: str, *, page_size: int | None = None) -> None:
        super().__init__()
        self.queue = queue
        self.page_size = page_size
        self.filter = QueueFilter()
        self.sort = "age"
        self.descending = False
        self.grouped = False
        self.page: QueuePage | None = None
        self.groups: list[ErrorGroup] = []
        self.total = 0
        self.total_capped = False
        self.marked: dict[int, Decimal] = {}
        self.loads = 0  # finished loads, for tests
        self._seq = 0
        self._busy = False
        self._away = False  # the detail or another queue is in front
        self._last_key = 0.0
        #: the key each page so far started after (None for page 1): a stack, so going back a
        #: page, or re-reading this one after an action, is one keyset read too
        self._anchors: list[tuple[Any, ...] | None] = [None]

    @property
    def claimsync(self) -> ClaimSyncApp:
        return self.app  # type: ignore[return-value]

    @property
    def title_text(self) -> str:
        return fmt.QUEUE_TITLES.get(self.queue, self.queue)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="queue-title")
        yield Input(
            placeholder="payer:SMPAE  claim:HOC00  100..500  >1000  free text"
            "   (Enter applies, Esc closes)",
            id="filter",
        )
        yield QueueTable(id="rows")
        yield Static(id="queue-status")
        yield AdaptiveFooter()

    def on_mount(self) -> None:
        self.title = "ClaimSync"
        self.sub_title = self.title_text
        self.query_one("#filter", Input).display = False
        self.query_one(QueueTable).focus()
        self._set_columns()
        self.reload()
        self.set_interval(self.claimsync.queue_refresh_seconds, self._refresh_when_idle)

    def on_key(self) -> None:
        self._last_key = time.monotonic()

    def _refresh_when_idle(self) -> None:
        """Re-read this page now and then, so what others did (another analyst, a script, the
        worker) shows up; never while a dialog or the filter is open, a read is running, or
        the analyst pressed a key in the last few seconds (the rows would move under them)."""
        typing = self.query_one("#filter", Input).display
        recent = time.monotonic() - self._last_key < IDLE_BEFORE_REFRESH
        if self.is_current and not (self._busy or typing or recent) and self.page is not None:
            self.reload(keep_page=True)

    def on_screen_suspend(self) -> None:
        self._away = True

    def on_screen_resume(self) -> None:
        """Back from the detail, states may have moved. Not on the first resume: the mount's
        read is under way (or done, on a busy machine), and a second would refill the table."""
        if self._away and (self.page is not None or self.grouped):
            self._away = False
            self.reload(keep_page=True)

    # -- loading -----------------------------------------------------------------------------

    def reload(self, *, keep_page: bool = False) -> None:
        """From the first page (or this page again, after an action), counting anew."""
        if self.grouped:
            self._start(self._fetch_groups)
            return
        if not keep_page:
            self._anchors = [None]
        self._start(partial(self._fetch_page, self._anchors[-1], True), cursor="keep")

    def action_reload(self) -> None:
        self.reload(keep_page=True)

    def _start(self, job: Any, cursor: str = "first") -> None:
        self._seq += 1
        self._busy = True
        seq = self._seq
        self.run_worker(partial(job, seq, cursor), thread=True, group="queue", exit_on_error=False)
        self.set_timer(SPINNER_AFTER, partial(self._spin, seq))

    def _spin(self, seq: int) -> None:
        """A read still running after a moment (a rare word scanning the queue) shows the
        loading indicator; a quick one never flickers it."""
        if self._busy and seq == self._seq:
            self.query_one(QueueTable).loading = True

    def _fetch_page(self, after: Any, count: bool, seq: int, cursor: str) -> None:
        try:
            page = self.claimsync.backend.queue_page(
                self.queue, self.filter, self.sort, after, self._limit(),
                descending=self.descending, count=count,
            )  # fmt: skip
        except Exception as error:
            self.post_message(LoadFailed(seq, message_of(error)))
        else:
            self.post_message(PageLoaded(seq, page, cursor))

    def _fetch_groups(self, seq: int, cursor: str) -> None:
        try:
            groups = self.claimsync.backend.error_groups(self.queue, self.filter)
        except Exception as error:
            self.post_message(LoadFailed(seq, message_of(error)))
        else:
            self.post_message(GroupsLoaded(seq, groups))

    def _limit(self) -> int:
        return self.page_size or self.claimsync.page_size

    @on(PageLoaded)
    def _page_loaded(self, message: PageLoaded) -> None:
        if message.seq != self._seq:
            return  # an older request; the analyst has moved on
        page = message.page
        if not page.rows and len(self._anchors) > 1:  # this page emptied (items resolved)
            self._anchors.pop()
            self._start(partial(self._fetch_page, self._anchors[-1], True), cursor="last")
            return
        if page.total >= 0:
            self.total, self.total_capped = page.total, page.total_capped
        self.page = page
        self._fill_rows(page, message.cursor)
        self._done()

    @on(GroupsLoaded)
    def _groups_loaded(self, message: GroupsLoaded) -> None:
        if message.seq != self._seq:
            return
        self.groups = message.groups
        table = self.query_one(QueueTable)
        table.clear()
        now = self.claimsync.backend.now()
        for index, group in enumerate(message.groups):
            table.add_row(*group_cells(group, now), key=f"group:{index}")
        self._done()

    @on(LoadFailed)
    def _load_failed(self, message: LoadFailed) -> None:
        if message.seq == self._seq:
            self.notify(  # the engine's words may quote data: shown as they are
                message.error, title="Could not load the queue", severity="error", markup=False
            )
            self._done()

    def _done(self) -> None:
        self._busy = False
        self.query_one(QueueTable).loading = False
        self.loads += 1
        self._update_title()
        self._update_status()

    # -- drawing -----------------------------------------------------------------------------

    def _set_columns(self) -> None:
        table = self.query_one(QueueTable)
        table.clear(columns=True)
        if self.grouped:
            for key, label in GROUP_COLUMNS:
                table.add_column(label, key=key)
            return
        for key, label in COLUMNS:
            if key == self.sort:
                label = f"{label} {'▼' if self.descending else '▲'}"
            table.add_column(label, key=key)

    def _fill_rows(self, page: QueuePage, cursor: str) -> None:
        table = self.query_one(QueueTable)
        keep = table.cursor_row
        table.clear()
        for row in page.rows:
            table.add_row(*row_cells(row, page, row.id in self.marked), key=str(row.id))
        if not page.rows:
            return
        target = {"first": 0, "last": len(page.rows) - 1}.get(cursor, keep)
        table.move_cursor(row=min(max(target, 0), len(page.rows) - 1), animate=False)

    def _update_title(self) -> None:
        if self.grouped:
            summary = f"{len(self.groups):,} error signatures (Enter lists one, g ungroups)"
        else:
            total = f"{self.total:,}{'+' if self.total_capped else ''}"
            summary = f"{total} open items · {SORT_WORDS[self.sort][self.descending]}"
        line = title_line(self.title_text, summary, self.filter.describe())
        self.query_one("#queue-title", Static).update(line)

    def _update_status(self) -> None:
        page = None if self.grouped else self.page
        line = status_line(page, self.page_number, self._limit(), self.marked)
        self.query_one("#queue-status", Static).update(line)

    def current_id(self) -> int | None:
        table = self.query_one(QueueTable)
        if self.grouped or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key and key.isdigit() else None

    def _current_row(self) -> QueueRow | None:
        item_id = self.current_id()
        if self.page is None or item_id is None:
            return None
        return next((r for r in self.page.rows if r.id == item_id), None)

    # -- paging ------------------------------------------------------------------------------

    @on(QueueTable.EdgeReached)
    def _edge(self, event: QueueTable.EdgeReached) -> None:
        event.stop()
        self.action_page(event.direction)

    def action_page(self, direction: str) -> None:
        page = self.page
        if self.grouped or self._busy or page is None:
            return
        if direction == "next" and page.has_more and page.last_key is not None:
            self._anchors.append(page.last_key)
            self._start(partial(self._fetch_page, page.last_key, False), cursor="first")
        elif direction == "previous" and len(self._anchors) > 1:
            self._anchors.pop()
            self._start(partial(self._fetch_page, self._anchors[-1], False), cursor="last")

    @property
    def page_number(self) -> int:
        return len(self._anchors)

    # -- marks, sort, filter, groups -----------------------------------------------------------

    def action_toggle_mark(self) -> None:
        row = self._current_row()
        if row is None:
            return
        if self.marked.pop(row.id, None) is None:
            self.marked[row.id] = row.amount
        table = self.query_one(QueueTable)
        table.update_cell(str(row.id), "id", row_cells(row, self.page, row.id in self.marked)[0])  # type: ignore[arg-type]
        table.action_cursor_down()
        self._update_status()

    def set_sort(self, sort: str, descending: bool = False) -> None:
        self.sort, self.descending = sort, descending
        self._set_columns()
        self.reload()

    def action_cycle_sort(self) -> None:
        if not self.grouped:
            self.set_sort(SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)])

    def action_reverse_sort(self) -> None:
        if not self.grouped:
            self.set_sort(self.sort, not self.descending)

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value
        if self.grouped or key not in SORTS:
            return
        self.set_sort(key, not self.descending if key == self.sort else False)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.filter.describe() if not self.filter.error_signature else ""
        box.focus()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            wanted = QueueFilter.parse(event.value)
        except UsageError as error:
            self.notify(error.message, title="Filter", severity="error", markup=False)
            return
        self.apply_filter(replace(wanted, error_signature=self.filter.error_signature))

    def apply_filter(self, wanted: QueueFilter) -> None:
        self.filter = wanted
        box = self.query_one("#filter", Input)
        box.display = False
        self.query_one(QueueTable).focus()
        self.reload()

    def action_toggle_groups(self) -> None:
        if self.queue != "dead-letter":
            self.notify("Grouping by error signature is for dead letters.", severity="warning")
            return
        self.grouped = not self.grouped
        self._set_columns()
        self.reload()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value or ""
        if key.startswith("group:"):
            group = self.groups[int(key.split(":", 1)[1])]
            self.grouped = False
            self._set_columns()
            self.apply_filter(replace(self.filter, error_signature=group.error_signature))
        elif key.isdigit():
            self.claimsync.open_detail(int(key))

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.display = False
            self.query_one(QueueTable).focus()
        elif not self.filter.empty:
            self.apply_filter(QueueFilter())
        elif self.grouped:
            self.action_toggle_groups()
        else:
            self.claimsync.open_dashboard()
