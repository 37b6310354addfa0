"""The triage actions in the command palette (Ctrl+P): the same six actions as the keys, on
the screen the palette was opened over (its marked rows, the row under the cursor, or the item
it shows)."""

from __future__ import annotations

from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from claimsync_console.console.actions import ActionRunner


def runner_for(app: Any) -> ActionRunner:
    """The app's runner when it keeps one (``action_runner``), else a new one."""
    found = getattr(app, "action_runner", None)
    return found if isinstance(found, ActionRunner) else ActionRunner(app)


class ActionCommands(Provider):
    """One command per action; the callback is bound to the screen under the palette, since
    by the time it runs the palette itself has closed."""

    def _commands(self) -> list[tuple[str, str, Any]]:
        return runner_for(self.app).commands(self.screen)

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, text=name, help=help_text)
