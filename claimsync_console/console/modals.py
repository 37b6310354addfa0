"""The action dialogs: a note, a write-off, a reversal, a bulk confirmation (the remap dialog,
which has two steps and calls the service itself, is ``remap_dialog.py``).

Each dialog only gathers what the operator decides and returns it through ``dismiss``; the
triage service checks it all again (a note that is only spaces, an amount over the item's), so
the checks here are for a quick, kind message, not for safety. Escape always cancels (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from claimsync_console.console.widgets.fmt import plain
from claimsync_console.domain import dollars
from claimsync_console.engine.triage_model import UsageError, parse_write_off_amount


def money(amount: Decimal | str) -> str:
    return dollars(Decimal(amount))


class Dialog(ModalScreen[Any]):
    """Escape cancels; ``fail`` shows why the operator's input cannot go yet."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    CSS_PATH = Path(__file__).with_name("modals.tcss")  # absolute: subclasses elsewhere find it too

    def action_cancel(self) -> None:
        self.dismiss(None)

    def fail(self, message: str) -> None:
        """Shown as it is (``plain``): a message may quote what the operator typed."""
        self.query_one("#error", Static).update(plain(message))

    def buttons(self, ok: str) -> ComposeResult:
        yield Static("", id="error", classes="error")
        with Horizontal(classes="buttons"):
            yield Button("Cancel", id="cancel")
            yield Button(ok, id="ok", variant="primary")

    @on(Button.Pressed, "#cancel")
    def _cancelled(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#ok")
    def _ok_pressed(self) -> None:
        self.submit()

    def submit(self) -> None:  # pragma: no cover - every dialog has its own
        raise NotImplementedError


class NoteDialog(Dialog):
    """A note (ignore, approve, reprocess) or a reason (revealing PHI). Returns the text."""

    def __init__(self, title: str, prompt: str, *, required: bool = True, ok: str = "OK") -> None:
        super().__init__()
        self.title_text, self.prompt, self.required, self.ok = title, prompt, required, ok

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(plain(self.title_text), classes="title")
            yield Label(plain(self.prompt))
            yield Input(id="note", placeholder="required" if self.required else "optional")
            yield from self.buttons(self.ok)

    @on(Input.Submitted)
    def _entered(self) -> None:
        self.submit()

    def submit(self) -> None:
        text = self.query_one("#note", Input).value.strip()
        if self.required and not text:
            self.fail("A note is required: say why, for the audit trail.")
            return
        self.dismiss(text)


@dataclass(frozen=True, slots=True)
class WriteOffChoice:
    reason: str
    amount: Decimal | None  # None: each item's whole amount (a bulk write-off)
    note: str


class WriteOffDialog(Dialog):
    """CARC reason picker, amount prefilled with the item's, and a required note.

    The amount is read as typed, by the service's own parser: the field takes any character,
    so a slip (``1e2``, ``-50``, ``1,00``) is refused with the parser's reason under the field
    instead of being filtered or re-read into another amount that posts (a filter turned
    ``1e2`` into 12, and dropping the commas made ``12,50`` into 1250). The dialog stays open
    and keeps the note. ``reason`` None (a bulk write-off of items with different CARCs)
    preselects nothing: a reason none of the items carries must be chosen, not defaulted."""

    def __init__(
        self,
        title: str,
        reasons: Sequence[tuple[str, str]],
        reason: str | None,
        amount: Decimal | None,
    ) -> None:
        super().__init__()
        self.title_text, self.reasons, self.reason, self.amount = title, reasons, reason, amount

    def compose(self) -> ComposeResult:
        options = [(plain(f"{code}  (account {account})"), code) for code, account in self.reasons]
        with Vertical():
            yield Static(plain(self.title_text), classes="title")
            yield Label("Reason (CARC or the rules' name)")
            if self.reason is None:
                yield Select(options, prompt="choose a reason", allow_blank=True, id="reason")
            else:
                yield Select(options, value=self.reason, allow_blank=False, id="reason")
            yield Label("Amount")
            if self.amount is None:
                yield Static("each item's whole amount", id="amount-fixed")
            else:
                yield Input(str(self.amount), id="amount")
                yield Static("", id="amount-error", classes="error")
            yield Label("Note (why it is not worth appealing)")
            yield Input(id="note", placeholder="required")
            yield from self.buttons("Write off")

    def on_mount(self) -> None:
        if self.amount is not None:
            self._amount_problem("")
        self.query_one("#reason" if self.reason is None else "#note").focus()

    @on(Input.Submitted)
    def _entered(self) -> None:
        self.submit()

    def _amount_problem(self, message: str) -> None:
        """Under the amount field; the line takes no room while there is nothing to say."""
        shown = self.query_one("#amount-error", Static)
        shown.update(plain(message))
        shown.display = bool(message)

    @on(Input.Changed, "#amount")
    def _amount_changed(self) -> None:
        if self.amount is not None:
            self._amount_problem("")

    @on(Select.Changed, "#reason")
    def _reason_changed(self) -> None:
        self.fail("")

    def submit(self) -> None:
        reason = self.query_one("#reason", Select).value
        note = self.query_one("#note", Input).value.strip()
        if reason is Select.NULL:
            self.query_one("#reason", Select).focus()
            self.fail("Choose a reason: the items' reasons differ, so none is chosen for you.")
            return
        amount: Decimal | None = None
        if self.amount is not None:
            field = self.query_one("#amount", Input)
            try:  # as typed: the parser alone decides what "1,234.50" or "1,00" mean
                amount = parse_write_off_amount(field.value, self.amount)
            except UsageError as error:
                self._amount_problem(error.message)
                field.focus()
                return
        if not note:
            self.fail("A note is required: say why, for the audit trail.")
            return
        self.dismiss(WriteOffChoice(str(reason), amount, note))


@dataclass(frozen=True, slots=True)
class ReverseChoice:
    action_id: int
    note: str


class ReverseDialog(Dialog):
    """The item's reversible actions, its last one first; a note is required."""

    def __init__(self, item_id: int, actions: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        self.item_id, self.actions = item_id, actions

    def compose(self) -> ComposeResult:
        options = [(plain(_reversible(a)), a["id"]) for a in self.actions]  # names as they are
        with Vertical():
            yield Static(f"Reverse an action on work item {self.item_id}", classes="title")
            yield Label("Action (its posting gets a compensating entry dated today)")
            yield Select(options, value=self.actions[0]["id"], allow_blank=False, id="action")
            yield Label("Note")
            yield Input(id="note", placeholder="required")
            yield from self.buttons("Reverse")

    def on_mount(self) -> None:
        self.query_one("#note", Input).focus()

    @on(Input.Submitted)
    def _entered(self) -> None:
        self.submit()

    def submit(self) -> None:
        note = self.query_one("#note", Input).value.strip()
        if not note:
            self.fail("A note is required: say why, for the audit trail.")
            return
        self.dismiss(ReverseChoice(int(self.query_one("#action", Select).value), note))  # type: ignore[arg-type]


def _reversible(action: dict[str, Any]) -> str:
    """``#2 write_off $12.00 as CO-50 by root at 2026-12-02 12:50``: what the action did, so
    the operator reverses the one they mean (``amount``/``reason`` from the detail's view)."""
    amount = action.get("amount")
    what = f" {money(amount)}" if amount is not None else ""
    if reason := action.get("reason"):
        what += f" as {reason}" if action["action"] == "write_off" else f" ({reason})"
    return (f"#{action['id']} {action['action']}{what} by {action['operator']}"
            f" at {_minute(action['created_at'])}")  # fmt: skip


def _minute(iso: str) -> str:
    """``2026-03-01T12:00:00+00:00`` as ``2026-03-01 12:00`` (UTC, as every time here)."""
    return iso[:16].replace("T", " ")


class ConfirmDialog(Dialog):
    """A bulk action's count and dollars; above the configured count the operator types the
    count itself, so a slip of the finger cannot write off four thousand items. ``detail``:
    what else the operator confirms (a write-off's reason and what goes to approval)."""

    def __init__(
        self, action: str, count: int, total: Decimal, *, typed: bool, detail: str = ""
    ) -> None:
        super().__init__()
        self.action, self.count, self.total, self.typed = action, count, total, typed
        self.detail = detail

    def compose(self) -> ComposeResult:
        verb = self.action.replace("_", " ")
        with Vertical():
            yield Static(f"{verb.capitalize()} {self.count} items?", classes="title")
            yield Static(f"{self.count} items, {money(self.total)} in all.", id="summary")
            if self.detail:
                yield Static(plain(self.detail), id="detail")
            if self.typed:
                yield Label(f"Type {self.count} to confirm")
                yield Input(id="typed", placeholder=str(self.count), restrict=r"[0-9]*")
            yield from self.buttons(verb.capitalize())

    def on_mount(self) -> None:
        if self.typed:
            self.query_one("#typed", Input).focus()
        else:
            self.query_one("#ok", Button).focus()

    @on(Input.Submitted)
    def _entered(self) -> None:
        self.submit()

    def submit(self) -> None:
        if self.typed and self.query_one("#typed", Input).value.strip() != str(self.count):
            self.fail(f"Type {self.count} exactly to go ahead, or Escape to cancel.")
            return
        self.dismiss(True)
