"""Small modals: the key help (``?``) and the queue jump (``:``)."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from claimsync_console.console.widgets import fmt

HELP_KEYS = (
    ("Anywhere", ""),
    ("?", "this help"),
    ("ctrl+p", "command palette (queues, actions)"),
    (":", "jump to a queue, the dashboard, or an item by its number"),
    ("q / ctrl+q", "quit"),
    ("Dashboard", ""),
    ("j k ↑ ↓, Enter", "choose a queue and open it"),
    ("Queues", ""),
    ("j k ↑ ↓, mouse", "move; past the last row loads the next page (n / p too)"),
    ("Enter", "open the item's detail"),
    ("/", "filter: payer:ID  claim:PCN  100..500  >1000  <=50  free text"),
    ("s / S, header click", "sort by age, payer, claim, amount, error / reverse"),
    ("space", "mark a row; actions then apply to every marked row"),
    ("g", "dead letters: group by error signature (Enter lists a group)"),
    ("m a r w v i", "remap, approve, retry, write off, reverse, ignore"),
    ("Esc", "close the filter, clear it, ungroup, then back to the dashboard"),
    ("Item detail", ""),
    ("m a r w v i", "act on this item (each asks what it needs first)"),
    ("p", "reveal patient name, member id, DOB (asks a reason; audited)"),
    ("j k, f5", "scroll, reload"),
    ("Esc", "back to the queue"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, text in HELP_KEYS:
            if text:
                table.add_row(key, text)
            else:
                table.add_row("", "")
                table.add_row(f"[bold underline]{key}[/]", "")
        with Vertical(id="help-box"):
            yield Static(table, id="help-keys")
            yield Static("Esc closes", id="help-hint")

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "Keys"

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


#: what ``:`` offers: the dashboard, then each queue (name, title)
DESTINATIONS = (("dashboard", "Dashboard"), *fmt.QUEUE_TITLES.items())


class JumpScreen(ModalScreen[str | None]):
    """Type a few letters of a queue (``dead``, ``den``) or an item's number, and Enter; or
    pick with the arrows."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="jump-box"):
            yield Input(placeholder="queue name, or item number", id="jump-input")
            yield OptionList(*self._options(""), id="jump-list")

    def on_mount(self) -> None:
        self.query_one("#jump-box").border_title = "Jump to"
        self.query_one("#jump-input", Input).focus()

    @staticmethod
    def _options(typed: str) -> list[Option]:
        """Queues by name; a number (``62``, ``#62``) is a work item, open or closed, so an
        item no queue lists any more (written off, to reverse) can still be opened."""
        needle = typed.strip().lower()
        number = needle.removeprefix("#").removeprefix("item").strip()
        item = [Option(f"Item {number}  [dim]detail[/]", id=f"item:{number}")]
        return (item if number.isdigit() else []) + [
            Option(f"{title}  [dim]{name}[/]", id=name)
            for name, title in DESTINATIONS
            if needle in name or needle in title.lower()
        ]

    @on(Input.Changed, "#jump-input")
    def _typed(self, event: Input.Changed) -> None:
        options = self.query_one("#jump-list", OptionList)
        options.clear_options()
        options.add_options(self._options(event.value))
        if options.option_count:
            options.highlighted = 0

    @on(Input.Submitted, "#jump-input")
    def _submitted(self, event: Input.Submitted) -> None:
        options = self.query_one("#jump-list", OptionList)
        if options.option_count == 0:
            # what the analyst typed, as it is (``[`` would otherwise start markup)
            self.notify(f"No queue matches {event.value!r}.", severity="warning", markup=False)
            return
        chosen = options.get_option_at_index(options.highlighted or 0)
        self.dismiss(chosen.id)

    @on(OptionList.OptionSelected, "#jump-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def key_down(self) -> None:
        self.query_one("#jump-list", OptionList).action_cursor_down()

    def key_up(self) -> None:
        self.query_one("#jump-list", OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
