"""The key footer, compact on a narrow terminal (Ctrl+P still opens the palette there, and
``?`` lists every key)."""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

#: Below this width the footer drops the space around its keys: at 100 columns the queue's
#: footer otherwise cut off Back, Help, Jump and Quit.
COMPACT_BELOW = 130


class AdaptiveFooter(Footer):
    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < COMPACT_BELOW
        self.compact = narrow
        self.show_command_palette = not narrow
