"""A DataTable that holds one keyset page and asks for the next or previous one at its edges.

Textual's DataTable is quick with a hundred rows and slow with half a million, so it never gets
more than a page: moving past the last row (j, down, or a wheel turn at the bottom) posts
``EdgeReached`` and the queue screen swaps in the neighbouring page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.events import MouseScrollDown, MouseScrollUp
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


class QueueTable(DataTable[Any]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    class EdgeReached(Message):
        """The cursor tried to leave the page: ``direction`` is "next" or "previous"."""

        def __init__(self, direction: str) -> None:
            super().__init__()
            self.direction = direction

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Textual measures new rows on idle; a line rendered in between (a busy machine, a
        page that arrived mid-frame) stays cached at the header-wide widths and the page
        shows truncated until the cursor moves. Dropping the caches once measured fixes it."""
        super()._update_dimensions(new_rows)
        self._clear_caches()
        self.refresh()

    def action_cursor_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1:
            self.post_message(self.EdgeReached("next"))
            return
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.row_count and self.cursor_row <= 0:
            self.post_message(self.EdgeReached("previous"))
            return
        super().action_cursor_up()

    def _on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        if self.scroll_y >= self.max_scroll_y and self.row_count:
            event.stop()
            self.post_message(self.EdgeReached("next"))
        else:
            super()._on_mouse_scroll_down(event)

    def _on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        if self.scroll_y <= 0 and self.row_count:
            event.stop()
            self.post_message(self.EdgeReached("previous"))
        else:
            super()._on_mouse_scroll_up(event)
