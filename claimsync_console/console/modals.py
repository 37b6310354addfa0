"""The action dialogs: a note, a write-off, a remap picker, a reversal, a bulk confirmation.

Each dialog only gathers what the operator decides and returns it through ``dismiss``; the
triage service checks it all again (a note that is only spaces, an amount over the item's), so
the checks here are for a quick, kind message, not for safety. Escape always cancels (None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from claimsync_console.engine.claim_search import ClaimHit


def money(amount: Decimal | str) -> str:
    return f"${Decimal(amount):,.2f}"


class Dialog(ModalScreen[Any]):
    """Escape cancels; ``fail`` shows why the operator's input cannot go yet."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    CSS_PATH = Path(__file__).with_name("modals.tcss")  # absolute: subclasses elsewhere find it too

    def action_cancel(self) -> None:
        self.dismiss(None)

    def fail(self, message: str) -> None:
        self.query_one("#error", Static).update(message)

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
            yield Static(self.title_text, classes="title")
            yield Label(self.prompt)
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
    """CARC reason picker, amount prefilled with the item's, and a required note."""

    def __init__(
        self, title: str, reasons: Sequence[tuple[str, str]], reason: str, amount: Decimal | None
    ) -> None:
        super().__init__()
        self.title_text, self.reasons, self.reason, self.amount = title, reasons, reason, amount

    def compose(self) -> ComposeResult:
        options = [(f"{code}  (account {account})", code) for code, account in self.reasons]
        with Vertical():
            yield Static(self.title_text, classes="title")
            yield Label("Reason (CARC or the rules' name)")
            yield Select(options, value=self.reason, allow_blank=False, id="reason")
            yield Label("Amount")
            if self.amount is None:
                yield Static("each item's whole amount", id="amount-fixed")
            else:
                yield Input(str(self.amount), id="amount", restrict=r"[0-9.,]*")
            yield Label("Note (why it is not worth appealing)")
            yield Input(id="note", placeholder="required")
            yield from self.buttons("Write off")

    def on_mount(self) -> None:
        self.query_one("#note", Input).focus()

    @on(Input.Submitted)
    def _entered(self) -> None:
        self.submit()

    def submit(self) -> None:
        reason = self.query_one("#reason", Select).value
        note = self.query_one("#note", Input).value.strip()
        amount: Decimal | None = None
        if self.amount is not None:
            text = self.query_one("#amount", Input).value.replace(",", "").strip()
            try:
                amount = Decimal(text)
            except InvalidOperation:
                self.fail(f"{text!r} is not an amount")
                return
            if amount <= 0 or amount > self.amount:
                self.fail(f"The amount must be above 0 and at most {money(self.amount)}.")
                return
        if not note:
            self.fail("A note is required: say why, for the audit trail.")
            return
        self.dismiss(WriteOffChoice(str(reason), amount, note))


@dataclass(frozen=True, slots=True)
class RemapChoice:
    claim_id: int
    note: str


class RemapDialog(Dialog):
    """The matcher's candidates with their scores; typing searches every claim instead.

    The search runs in a thread worker (``search`` reads the database) and posts its hits back,
    so typing never waits on a query."""

    class Found(Message):
        def __init__(self, term: str, hits: list[ClaimHit]) -> None:
            super().__init__()
            self.term, self.hits = term, hits

    def __init__(
        self,
        item_id: int,
        candidates: Sequence[dict[str, Any]],
        search: Callable[[str], list[ClaimHit]],
    ) -> None:
        super().__init__()
        self.item_id, self.candidates, self.search = item_id, candidates, search

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Remap work item {self.item_id} to a claim", classes="title")
            yield Label("Search claims (patient control number or claim id)")
            yield Input(id="search", placeholder="start of a PCN, or a claim id")
            yield DataTable(id="claims", cursor_type="row", zebra_stripes=True)
            yield Label("Note")
            yield Input(id="note", placeholder="optional")
            yield from self.buttons("Remap")

    def on_mount(self) -> None:
        table = self.query_one("#claims", DataTable)
        table.add_columns("claim", "PCN", "payer", "billed", "service", "score", "why")
        self._show_candidates()
        table.focus()

    def _show_candidates(self) -> None:
        table = self.query_one("#claims", DataTable)
        table.clear()
        for c in self.candidates:
            why = "; ".join(c.get("reasons", []))
            why = why if len(why) <= 46 else why[:45] + "…"
            table.add_row(
                str(c["claim_id"]), c["patient_control_number"], c["payer_id"],
                money(c["billed_amount"]), c.get("service_date_from") or "", str(c["score"]),
                why, key=str(c["claim_id"]),
            )  # fmt: skip
        if not self.candidates:
            self.fail("The matcher found no candidate: search the claims.")

    @on(Input.Changed, "#search")
    def _search(self, event: Input.Changed) -> None:
        term = event.value.strip()
        if not term:
            self._show_candidates()
            return
        self._run_search(term)

    @work(thread=True, exclusive=True, group="claim-search")
    def _run_search(self, term: str) -> None:
        self.post_message(self.Found(term, self.search(term)))

    def on_remap_dialog_found(self, found: Found) -> None:
        if found.term != self.query_one("#search", Input).value.strip():
            return  # an older search finished late
        table = self.query_one("#claims", DataTable)
        table.clear()
        for hit in found.hits:
            when = hit.service_date_from.isoformat() if hit.service_date_from else ""
            table.add_row(
                str(hit.claim_id), hit.patient_control_number, hit.payer_id,
                money(hit.billed_amount), when, "", "search", key=str(hit.claim_id),
            )  # fmt: skip
        self.fail("" if found.hits else f"No claim id or PCN starting {found.term!r}.")

    def on_key(self, event: events.Key) -> None:
        """Typing while the candidates have focus searches: the analyst should not have to
        find the search box first."""
        search = self.query_one("#search", Input)
        if isinstance(self.focused, DataTable) and event.is_printable and event.character:
            event.stop()
            search.focus()
            search.insert_text_at_cursor(event.character)

    @on(Input.Submitted, "#search")
    def _to_the_claims(self, event: Input.Submitted) -> None:
        """Enter (or down) in the search moves to the claims; Enter there picks one."""
        event.stop()
        self.query_one("#claims", DataTable).focus()

    def key_down(self, event: events.Key) -> None:
        if self.focused is self.query_one("#search", Input):
            event.stop()
            self.query_one("#claims", DataTable).focus()

    @on(DataTable.RowSelected)
    def _picked(self) -> None:
        self.submit()

    @on(Input.Submitted, "#note")
    def _entered(self) -> None:
        self.submit()

    def submit(self) -> None:
        table = self.query_one("#claims", DataTable)
        if table.row_count == 0:
            self.fail("Pick a claim first.")
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        note = self.query_one("#note", Input).value.strip()
        self.dismiss(RemapChoice(int(str(row_key.value)), note))


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
        options = [
            (f"#{a['id']} {a['action']} by {a['operator']} at {_minute(a['created_at'])}", a["id"])
            for a in self.actions
        ]
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


def _minute(iso: str) -> str:
    """``2026-03-01T12:00:00+00:00`` as ``2026-03-01 12:00`` (UTC, as every time here)."""
    return iso[:16].replace("T", " ")


class ConfirmDialog(Dialog):
    """A bulk action's count and dollars; above the configured count the operator types the
    count itself, so a slip of the finger cannot write off four thousand items."""

    def __init__(self, action: str, count: int, total: Decimal, *, typed: bool) -> None:
        super().__init__()
        self.action, self.count, self.total, self.typed = action, count, total, typed

    def compose(self) -> ComposeResult:
        verb = self.action.replace("_", " ")
        with Vertical():
            yield Static(f"{verb.capitalize()} {self.count} items?", classes="title")
            yield Static(f"{self.count} items, {money(self.total)} in all.", id="summary")
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
