"""What the queue's action keys act on: the marked rows, else the one under the cursor, with
the versions the analyst saw. A mixin, so the queue screen's module stays about its table."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claimsync_console.console.app import ClaimSyncApp
    from claimsync_console.engine.console_backend import QueuePage


class QueueSelection:
    if TYPE_CHECKING:  # provided by QueueScreen and Screen
        marked: dict[int, Decimal]
        page: QueuePage | None

        @property
        def claimsync(self) -> ClaimSyncApp: ...
        def current_id(self) -> int | None: ...
        def reload(self, *, keep_page: bool = False) -> None: ...
        def notify(self, message: str, **kwargs: Any) -> None: ...

    def selection(self) -> list[int]:
        """The marked items, else the one under the cursor."""
        if self.marked:
            return sorted(self.marked)
        current = self.current_id()
        return [] if current is None else [current]

    def action_targets(self) -> list[int]:
        """What the palette's actions act on (the runner asks the screen under it)."""
        return self.selection()

    def action_versions(self) -> dict[int, int]:
        """The versions the analyst saw, so a change since then is a conflict, not a surprise."""
        rows = self.page.rows if self.page is not None else []
        wanted = set(self.selection())
        return {row.id: row.version for row in rows if row.id in wanted}

    def action_act(self, action: str) -> None:
        ids = self.selection()
        if not ids:
            self.notify("No item selected: move to a row or mark some with space.",
                        severity="warning")  # fmt: skip
            return
        self.claimsync.start_action(action, ids, self.action_versions())

    def on_action_finished(self, message: Any) -> None:
        """Posted by the action runner to every screen when an action is done; no ids means
        it was cancelled or refused before it ran, so nothing changed and nothing is read."""
        item_ids = getattr(message, "item_ids", ())
        if not item_ids:
            return
        for item_id in item_ids:
            self.marked.pop(item_id, None)
        self.reload(keep_page=True)
