"""Operator actions from the console: ask what the action needs, run it through the triage
service in a thread worker, say what happened in a notification.

``ActionRunner.run`` is a coroutine that waits for dialogs, so it must run in a worker
(``app.run_worker(runner.run(...))``, which is what :meth:`ActionRunner.start` does): Textual
only lets a worker wait for a dialog's answer. The service call itself runs in a thread worker,
so the screen stays responsive while the database works. Every error becomes a sentence: the
service's typed errors say what the operator can do about them, and anything else (a database
that went away) is named by its type, never shown as a traceback.

Before any dialog the runner checks that the action applies to the items (their kinds and
states, ``console_checks``), so that a wrong key costs one notice, not a note typed in vain. On
a selection of several items it previews the count and dollars and asks for confirmation;
above ``bulk_confirm_typed_above`` items the operator types the count. Cancelling keeps the
queue's marks: ``ActionFinished`` then names no item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

from textual.app import App
from textual.message import Message
from textual.screen import Screen
from textual.worker import NoActiveWorker, get_current_worker

from claimsync_console.console.action_messages import (
    Failed,
    bulk_summary,
    describe_error,
    erp_note,
)
from claimsync_console.console.modals import (
    ConfirmDialog,
    NoteDialog,
    ReverseChoice,
    ReverseDialog,
    WriteOffChoice,
    WriteOffDialog,
    money,
)
from claimsync_console.console.remap_dialog import RemapDialog, RemapFacts, RemapPayment
from claimsync_console.engine.claim_search import search_claims
from claimsync_console.engine.console_checks import (
    MarkedItem,
    action_refusal,
    common_carc,
    marked_items,
    write_off_outlook,
)
from claimsync_console.engine.console_detail import (
    ItemView,
    approve_refusal_for,
    claim_payer_name,
    load_item_view,
    write_off_reason,
)
from claimsync_console.engine.triage_model import (
    ActionResult,
    BulkResult,
    Preview,
    TriageError,
)
from claimsync_console.settings import Settings

log = logging.getLogger(__name__)

ACTIONS = ("remap", "approve", "retry", "write_off", "reverse", "ignore")
LABELS = {
    "remap": ("Remap", "Match an unmatched payment to a claim, or reprocess a mapping error"),
    "approve": ("Approve", "Approve the held posting"),
    "retry": ("Retry", "Send a dead letter's posting to the ERP again"),
    "write_off": ("Write off", "Write off a denial or a rejected claim, with a reason"),
    "reverse": ("Reverse", "Reverse the item's last write-off or approval"),
    "ignore": ("Ignore", "Close the item without posting, with a note"),
}
#: The keys each screen binds to the actions (shown in its footer).
ACTION_KEYS = {
    "remap": "m",
    "approve": "a",
    "retry": "r",
    "write_off": "w",
    "reverse": "v",
    "ignore": "i",
}
#: What a bulk remap does: only a mapping error can be remapped without choosing a claim.
BULK_NAMES = {"remap": "reprocess"}
SINGLE_ONLY = ("reverse",)


class ActionFinished(Message):
    """Posted to every screen (and the app) after an action, whatever its outcome, so that
    queues and the detail reload what changed. ``item_ids``: the items the service was asked
    to act on; empty when the operator cancelled or the action was refused before it ran
    (nothing changed, so a queue keeps its marks)."""

    bubble = False

    def __init__(self, action: str, item_ids: Sequence[int]) -> None:
        super().__init__()
        self.action = action
        self.item_ids = list(item_ids)


class ActionRunner:
    """The six actions for one app. ``app.backend`` gives the service (``triage``), its
    ``sessions`` and ``rules``; ``typed_above`` defaults to the settings' value."""

    def __init__(self, app: App[Any], *, typed_above: int | None = None) -> None:
        self.app = app
        if typed_above is None:
            settings = getattr(app, "settings", None) or getattr(app.backend, "settings", None)  # type: ignore[attr-defined]
            source = settings if isinstance(settings, Settings) else Settings
            typed_above = int(source.bulk_confirm_typed_above)
        self.typed_above = typed_above
        self.busy = False
        self.acted = False  # whether the current run reached the service

    @property
    def backend(self) -> Any:
        return self.app.backend  # type: ignore[attr-defined]

    # -- entry points --------------------------------------------------------------------------

    def start(
        self, action: str, item_ids: Sequence[int], *, versions: dict[int, int] | None = None
    ) -> None:
        """Run an action in a worker (the only place that may wait for a dialog)."""
        self.app.run_worker(
            self.run(action, list(item_ids), versions=versions), group="action", exit_on_error=False
        )

    def commands(
        self, screen: Screen[Any] | None = None
    ) -> list[tuple[str, str, Callable[[], Any]]]:
        """(name, help, callback) for the command palette; each acts on ``screen``'s targets
        (its marked rows, or the row under the cursor, or the item shown), by default the
        screen active when the callback runs."""
        return [
            (label, help_text, partial(self.start_on_screen, action, screen))
            for action, (label, help_text) in LABELS.items()
        ]

    def start_on_screen(self, action: str, screen: Screen[Any] | None = None) -> None:
        shown = screen or self.app.screen
        targets = getattr(shown, "action_targets", None) or getattr(shown, "selection", None)
        ids = list(targets()) if callable(targets) else []
        versions = getattr(shown, "action_versions", None)
        self.start(action, ids, versions=versions() if callable(versions) else None)

    async def run(
        self, action: str, item_ids: list[int], *, versions: dict[int, int] | None = None
    ) -> None:
        """Ask, act, tell. ``versions``: the item versions the operator saw (a change since is
        a conflict); without them the service acts on the current version. Called outside a
        worker, it starts itself in one; while an action is asking or running, another key
        press is refused rather than stacking a second dialog."""
        try:
            get_current_worker()
        except NoActiveWorker:
            self.start(action, item_ids, versions=versions)
            return
        if action not in ACTIONS:
            self.app.notify(f"No action {action!r}.", severity="error")
            return
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            self.app.notify("Select an item (or mark some with space) first.", severity="warning")
            return
        if self.busy:
            self.app.notify("Another action is still open; finish it first.", severity="warning")
            return
        self.busy, self.acted = True, False
        try:
            if len(ids) == 1:
                await self._single(action, ids[0], (versions or {}).get(ids[0]))
            else:
                await self._bulk(action, ids)
        except Exception as error:  # a bug must not take the console down with it
            log.exception("console action %s failed", action)
            message, _ = describe_error(action, error)
            self.app.notify(message, severity="error", timeout=10, markup=False)
        finally:
            self.busy = False
            self._finished(action, ids if self.acted else [])

    # -- one item ------------------------------------------------------------------------------

    async def _single(self, action: str, item_id: int, version: int | None) -> None:
        view = await self._call(self._load, item_id)
        if isinstance(view, Failed):
            self._tell(action, view)
            return
        if why := action_refusal(action, [MarkedItem.of(view.item)]):
            self.app.notify(why, severity="warning", timeout=10, markup=False)
            return
        version = view.item["version"] if version is None else version
        call = await self._ask_single(action, view, version)
        if call is None:
            return
        self.acted = True
        self._tell(action, await self._call(self._perform, call))

    async def _ask_single(
        self, action: str, view: ItemView, version: int
    ) -> Callable[[], Any] | None:
        """The dialog(s) an action needs, then the service call to make (None: cancelled)."""
        triage, item_id, kind = self.backend.triage, view.item_id, view.item["kind"]
        if action == "retry":
            return partial(triage.retry_item, item_id, expected_version=version)
        if action == "remap" and kind == "mapping_error":
            note = await self._ask(NoteDialog(
                f"Reprocess work item {item_id} with the current rules",
                "Note", required=False, ok="Reprocess",
            ))  # fmt: skip
            if note is None:
                return None
            return partial(
                triage.remap, item_id, reprocess=True, note=note, expected_version=version
            )
        if action == "remap":  # the dialog remaps (a refusal is shown in it): the result
            search = partial(search_claims, self.backend.sessions)
            remapped = await self._ask(RemapDialog(
                item_id, RemapPayment.of(view.item, view.payment), view.candidates, search,
                partial(triage.remap, item_id, expected_version=version),
                partial(self._remap_facts, item_id),
            ))  # fmt: skip
            return None if remapped is None else partial(_made, remapped)
        if action == "write_off":
            reason = write_off_reason(triage.rules, view.item.get("details") or {})
            chosen: WriteOffChoice | None = await self._ask(self._write_off_dialog(
                f"Write off work item {item_id} ({money(view.item['amount'])})",
                reason, Decimal(view.item["amount"]),
            ))  # fmt: skip
            if chosen is None:
                return None
            return partial(triage.write_off, item_id, reason=chosen.reason, note=chosen.note,
                           amount=chosen.amount, expected_version=version)  # fmt: skip
        if action == "reverse":
            if not view.reversible:
                self.app.notify(
                    f"Work item {item_id} has no write-off or approval to reverse.",
                    severity="warning",
                )
                return None
            undo: ReverseChoice | None = await self._ask(ReverseDialog(item_id, view.reversible))
            if undo is None:
                return None
            return partial(triage.reverse, undo.action_id, note=undo.note)
        if action == "approve" and (why := approve_refusal_for(view, triage)):
            self.app.notify(f"Not allowed: {why}", severity="error", timeout=10, markup=False)
            return None  # said before the note, not after the analyst wrote one
        verb = "Approve" if action == "approve" else "Ignore"
        note = await self._ask(NoteDialog(
            f"{verb} work item {item_id} ({money(view.item['amount'])})",
            "Note" if action == "approve" else "Note (why it needs no posting)",
            required=action == "ignore", ok=verb,
        ))  # fmt: skip
        if note is None:
            return None
        method = triage.approve if action == "approve" else triage.ignore
        return partial(method, item_id, note=note, expected_version=version)

    def _write_off_dialog(
        self, title: str, reason: str | None, amount: Decimal | None
    ) -> WriteOffDialog:
        reasons = sorted(self.backend.triage.rules.write_offs.items())
        return WriteOffDialog(title, reasons, reason, amount)

    def _remap_facts(self, item_id: int, claim_id: int) -> RemapFacts:
        """For the remap dialog's confirmation, in its thread worker: the claim's payer name
        and what the service would want ``force`` for (read only; the remap checks again)."""
        warnings = getattr(self.backend.triage, "remap_warnings", None)
        found = tuple(warnings(item_id, claim_id)) if callable(warnings) else ()
        return RemapFacts(claim_payer_name(self.backend.sessions, claim_id), found)

    # -- several items -------------------------------------------------------------------------

    async def _bulk(self, action: str, ids: list[int]) -> None:
        if action in SINGLE_ONLY:
            self.app.notify(f"{LABELS[action][0]} works on one item at a time.", severity="warning")
            return
        name = BULK_NAMES.get(action, action)
        items = await self._call(marked_items, self.backend.sessions, ids)
        if isinstance(items, Failed):
            self._tell(action, items)
            return
        if why := action_refusal(action, items):
            self.app.notify(why, severity="warning", timeout=10, markup=False)
            return
        preview = await self._call(self.backend.triage.preview, name, ids)
        if isinstance(preview, Failed):
            self._tell(action, preview)
            return
        options = await self._ask_bulk(action, preview, items)
        if options is None:
            return
        typed = preview.count > self.typed_above
        detail = ""
        if action == "write_off":  # the reason chosen, named where the operator confirms
            triage = self.backend.triage
            detail = write_off_outlook(triage.rules, options["reason"], triage.role, preview.count)
        confirm = ConfirmDialog(name, preview.count, preview.total, typed=typed, detail=detail)
        if not await self._ask(confirm):
            return
        apply = partial(self.backend.triage.bulk, name, ids, **options)
        self.acted = True
        self._tell(action, await self._call(self._perform, apply))

    async def _ask_bulk(
        self, action: str, preview: Preview, items: list[MarkedItem]
    ) -> dict[str, Any] | None:
        what = f"{preview.count} items ({money(preview.total)})"
        if action == "write_off":  # the items' own CARC when they share one, as for one item;
            carc = common_carc(items, list(self.backend.triage.rules.write_offs))  # else none
            shared = f", all {carc}" if carc else ", mixed reasons: choose one"
            chosen: WriteOffChoice | None = await self._ask(
                self._write_off_dialog(f"Write off {what}{shared}", carc, None)
            )
            return None if chosen is None else {"reason": chosen.reason, "note": chosen.note}
        if action == "retry":
            return {}
        label = {"remap": "Reprocess", "approve": "Approve", "ignore": "Ignore"}[action]
        note = await self._ask(
            NoteDialog(f"{label} {what}", "Note", required=action == "ignore", ok=label)
        )
        return None if note is None else {"note": note}

    # -- plumbing ------------------------------------------------------------------------------

    def _load(self, item_id: int) -> ItemView:
        triage = self.backend.triage
        return load_item_view(self.backend.sessions, triage.rules, item_id, now=triage.now_fn())

    async def _ask(self, dialog: Any) -> Any:
        return await self.app.push_screen(dialog, wait_for_dismiss=True)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn`` in a thread worker; its error comes back as a :class:`Failed`."""

        def guarded() -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as error:  # every error is said to the operator, never raised
                if not isinstance(error, TriageError):
                    log.warning("console action failed: %s", type(error).__name__)
                return Failed(error)

        worker = self.app.run_worker(guarded, thread=True, group="triage", exit_on_error=False)
        return await worker.wait()

    def _perform(self, call: Callable[[], Any]) -> tuple[Any, list[str]]:
        """The service call, then (in the same thread) whether the ERP its posting waits for
        is down: a queued posting behind an open circuit waits, and the operator should know it
        did not fail."""
        done = call()
        queued = done.outbox_id if isinstance(done, ActionResult) else None
        if isinstance(done, BulkResult):
            queued = next((o.result.outbox_id for o in done.outcomes if o.result), None)
        if queued is None:
            return done, []
        try:
            return done, self.backend.erp_circuits_open()
        except Exception:  # the note is a courtesy; the action itself is done
            return done, []

    def _tell(self, action: str, outcome: Any) -> None:
        """Every notice here quotes the service's or the ERP's words (an item's error, a
        payer's claim number): ``markup=False``, so ``[/b]`` or ``[unknown_account]`` in them
        is shown as it is instead of crashing the toast or vanishing."""
        if isinstance(outcome, Failed):
            message, severity = describe_error(action, outcome.error)
            self.app.notify(message, severity=severity, timeout=10, markup=False)  # type: ignore[arg-type]
            return
        done, down = outcome
        note = erp_note(down)
        if isinstance(done, BulkResult):
            text, severity = bulk_summary(action, done)
            self.app.notify(text + note, severity=severity, timeout=10, markup=False)  # type: ignore[arg-type]
        elif isinstance(done, ActionResult):
            self.app.notify(done.message + note, timeout=8, markup=False)

    def _finished(self, action: str, ids: list[int]) -> None:
        for screen in self.app.screen_stack:
            screen.post_message(ActionFinished(action, ids))
        self.app.post_message(ActionFinished(action, ids))


def _made(result: Any) -> Any:
    """A service call a dialog already made (the remap dialog): its result, for ``_perform``."""
    return result
