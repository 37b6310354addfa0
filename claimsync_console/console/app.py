"""The operator console: ``ClaimSyncApp(backend)``.

Each queue is a Textual *mode* with its own screen stack, so jumping between queues (``:`` or
the palette) keeps each one's page, sort, filter and marks. The app holds the backend (the only
door to data) and the action runner; the item detail and the action modals live in
``screens/detail.py`` and ``actions.py``. The runner and the detail are imported lazily, so the
console still opens (and says so) if a build lacks them.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from claimsync_console.console.screens.dashboard import DashboardScreen
from claimsync_console.console.screens.modals import HelpScreen, JumpScreen
from claimsync_console.console.screens.queue import QueueScreen
from claimsync_console.console.widgets import fmt
from claimsync_console.engine.console_backend import QUEUES

if TYPE_CHECKING:
    from claimsync_console.engine.console_backend import ConsoleBackend


def _queue_mode(name: str) -> Screen[Any]:
    return QueueScreen(name)


def _action_commands() -> set[Any]:
    """The six actions in the palette, when this build has the action runner."""
    try:
        from claimsync_console.console.palette import ActionCommands
    except ImportError:
        return set()
    return {ActionCommands}


class ClaimSyncApp(App[None]):
    """k9s for remittance exceptions: a live dashboard and one mode per work queue."""

    CSS_PATH = "console.tcss"
    TITLE = "ClaimSync"
    MODES: ClassVar[dict[str, Any]] = {
        "dashboard": DashboardScreen,
        **{name: partial(_queue_mode, name) for name in QUEUES},
    }
    DEFAULT_MODE = "dashboard"
    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | _action_commands()
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help"),
        Binding("colon", "jump", "Jump"),
        Binding("ctrl+p", "command_palette", "Palette", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        backend: ConsoleBackend,
        *,
        refresh_seconds: float = 1.0,
        queue_refresh_seconds: float = 15.0,
        page_size: int = 100,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.refresh_seconds = refresh_seconds
        self.queue_refresh_seconds = queue_refresh_seconds
        self.page_size = page_size
        self.actions: Any = None
        self.sub_title = f"{backend.operator} ({backend.role})"

    def on_mount(self) -> None:
        try:
            from claimsync_console.console.actions import ActionRunner
        except ImportError:
            self.actions = None
        else:
            typed_above = self.backend.settings.bulk_confirm_typed_above
            self.actions = ActionRunner(self, typed_above=typed_above)
        self.action_runner = self.actions  # the name the palette provider looks for

    # -- navigation ----------------------------------------------------------------------------

    def open_queue(self, name: str) -> None:
        if name in QUEUES:
            self.switch_mode(name)

    def open_dashboard(self) -> None:
        self.switch_mode("dashboard")

    def open_detail(self, item_id: int) -> None:
        try:
            from claimsync_console.console.screens.detail import DetailScreen
        except ImportError:
            self.notify("The item detail is not available in this build.", severity="warning")
            return
        self.push_screen(DetailScreen(item_id))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_jump(self) -> None:
        if isinstance(self.screen, JumpScreen):
            return

        def chosen(name: str | None) -> None:
            if name == "dashboard":
                self.open_dashboard()
            elif name and name.startswith("item:"):
                self.open_detail(int(name.removeprefix("item:")))
            elif name:
                self.open_queue(name)

        self.push_screen(JumpScreen(), chosen)

    # -- actions -------------------------------------------------------------------------------

    def start_action(
        self, action: str, item_ids: list[int], versions: dict[int, int] | None = None
    ) -> bool:
        """Hand the action to the runner, which confirms, asks for notes, calls the triage
        service in a worker, notifies, and posts ``ActionFinished`` (the queue re-reads)."""
        if self.actions is None:
            self.notify("Actions are not available in this build.", severity="warning")
            return False
        self.actions.start(action, item_ids, versions=versions)
        return True

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # Textual's own "Keys" panel would compete with ``?``; the palette offers ours instead
        yield from (c for c in super().get_system_commands(screen) if c.title != "Keys")
        yield SystemCommand("Keys (?)", "Every key of the console", self.action_help)
        yield SystemCommand("Dashboard", "Live sync status", self.open_dashboard)
        for name, title in fmt.QUEUE_TITLES.items():
            yield SystemCommand(f"Queue: {title}", f"Open the {name} queue",
                                partial(self.open_queue, name))  # fmt: skip
        if isinstance(screen, QueueScreen):
            yield SystemCommand("Filter (/)", "payer, amount range, text", screen.action_filter)
            yield SystemCommand("Sort by the next column (s)", "", screen.action_cycle_sort)
            if screen.queue == "dead-letter":
                yield SystemCommand("Group by error signature (g)", "", screen.action_toggle_groups)
