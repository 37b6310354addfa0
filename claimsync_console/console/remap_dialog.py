"""The remap dialog: choose the claim an unmatched payment belongs to, then confirm it next to
the payment, then remap (the dialog calls the service itself, so a refusal is shown in place).

Remapping attaches the payer's money to a claim, so nothing here remaps by accident. The search
box has focus when the dialog opens and Enter there only searches: ``m`` and a stray Enter used
to remap to the matcher's first guess, even when no candidate was right. A claim is chosen
explicitly (down to the claims, then Enter or a click on its row, or "Choose claim"); the
confirmation then shows the payment (payer, PCN, charge) beside the claim (payer, PCN, billed
amount, service date), each difference highlighted, and only its Remap button remaps (Enter in
the note moves to that button, as its label says, so a double Enter on a row cannot remap
either). While the confirmation shows, a thread worker asks ``prepare`` for the claim's payer
name and the service's warnings (``remap_warnings``: another payer, an active payment already
on the claim, another charge), so they are read before Remap is pressed, not after.

The service may refuse a claim that looks wrong (another payer, already paid, another charge)
with ``RemapNeedsForce``. The refusal is shown in the dialog, the analyst's choice and note
kept, and the focus moves to "Remap anyway", which calls again with ``force=True``. Both are
looked up by name and by the service's signature, so the dialog works without such a check.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Label, Static

from claimsync_console.console.action_messages import describe_error
from claimsync_console.console.modals import Dialog, money
from claimsync_console.console.widgets.fmt import plain
from claimsync_console.engine.claim_search import ClaimHit

log = logging.getLogger(__name__)
DIFFERS = "bold black on yellow"  # a difference between the payment and the claim


@dataclass(frozen=True, slots=True)
class RemapPayment:
    """The payment side of the comparison (what the 835 says), from the item's view."""

    payer_id: str
    payer_name: str
    patient_control_number: str
    charge: Decimal | None
    paid: Decimal
    service_date: str = ""

    @classmethod
    def of(cls, item: dict[str, Any], payment: dict[str, Any] | None) -> RemapPayment:
        pay = payment or {}
        return cls(
            payer_id=item.get("payer_id") or "", payer_name=item.get("payer_name") or "",
            patient_control_number=pay.get("patient_control_number")
            or item.get("patient_control_number") or "",
            charge=pay.get("charge"), paid=Decimal(pay.get("paid", item["amount"])),
            service_date=pay.get("service_date") or "",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ClaimSide:
    """A claim the analyst may choose: a candidate of the matcher's or a search hit."""

    claim_id: int
    patient_control_number: str
    payer_id: str
    billed: Decimal
    service_date: str
    payer_name: str = ""  # known once ``prepare`` answered (hits and candidates have no name)


@dataclass(frozen=True, slots=True)
class RemapFacts:
    """What ``prepare`` reads for the confirmation: the claim's payer name, and what the
    service would refuse the remap for without ``force`` (empty: nothing)."""

    payer_name: str
    warnings: tuple[str, ...] = ()


def needs_force(error: BaseException) -> bool:
    """The service's "looks wrong, confirm with force" refusal (by name: the console must not
    depend on the class existing)."""
    return getattr(type(error), "__name__", "") == "RemapNeedsForce"


def accepts_force(call: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(call).parameters
    except (TypeError, ValueError):
        return False
    return "force" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def comparison(payment: RemapPayment, claim: ClaimSide) -> tuple[Table, list[str]]:
    """The payment beside the claim, each differing value highlighted; and what differs."""
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for column in ("", "payment (835)", f"claim {claim.claim_id} (837)", ""):
        table.add_column(column, overflow="fold")
    charge = money(payment.charge) if payment.charge is not None else "-"
    rows = [
        ("payer", f"{payment.payer_id} ({payment.payer_name})",
         f"{claim.payer_id} ({claim.payer_name})" if claim.payer_name else claim.payer_id,
         payment.payer_id != claim.payer_id),
        ("PCN", payment.patient_control_number, claim.patient_control_number,
         payment.patient_control_number != claim.patient_control_number),
        ("amount", f"charge {charge}, paid {money(payment.paid)}", f"billed {money(claim.billed)}",
         payment.charge is not None and payment.charge != claim.billed),
        ("service date", payment.service_date or "-", claim.service_date or "-",
         bool(payment.service_date and claim.service_date)
         and payment.service_date != claim.service_date),
    ]  # fmt: skip
    differs = []
    for name, ours, theirs, different in rows:
        style = DIFFERS if different else ""
        table.add_row(Text(name, style="bold"), plain(ours), plain(theirs, style),
                      Text("≠ differs" if different else "", style="bold"))  # fmt: skip
        if different:
            differs.append(name)
    return table, differs


class RemapDialog(Dialog):
    """``remap(claim_id=, note=[, force=])`` makes the service call (the runner binds the item
    and its version); the dialog dismisses with its result, or None when cancelled."""

    DEFAULT_CSS: ClassVar[str] = """
    RemapDialog #pick, RemapDialog #confirm { height: auto; }
    RemapDialog #payment { color: $text-muted; }
    """

    class Found(Message):
        def __init__(self, term: str, hits: list[ClaimHit]) -> None:
            super().__init__()
            self.term, self.hits = term, hits

    class Prepared(Message):
        def __init__(self, claim_id: int, facts: RemapFacts | None) -> None:
            super().__init__()
            self.claim_id, self.facts = claim_id, facts

    class Done(Message):
        def __init__(self, result: Any, error: BaseException | None) -> None:
            super().__init__()
            self.result, self.error = result, error

    def __init__(
        self,
        item_id: int,
        payment: RemapPayment,
        candidates: Sequence[dict[str, Any]],
        search: Callable[[str], list[ClaimHit]],
        remap: Callable[..., Any],
        prepare: Callable[[int], RemapFacts] | None = None,
    ) -> None:
        super().__init__()
        self.item_id, self.payment, self.candidates = item_id, payment, candidates
        self.search, self.remap, self.prepare = search, remap, prepare
        self.shown: dict[int, ClaimSide] = {}
        self.chosen: ClaimSide | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        pay = self.payment
        with Vertical():
            yield Static(f"Remap work item {self.item_id} to a claim", classes="title")
            charge = f"charge {money(pay.charge)} · " if pay.charge is not None else ""
            yield Static(plain(f"Payment: {pay.payer_id} · PCN {pay.patient_control_number} · "
                               f"{charge}paid {money(pay.paid)}"), id="payment")  # fmt: skip
            with Vertical(id="pick"):
                yield Label("Search claims (PCN or claim id): Enter searches, ↓ to the claims")
                yield Input(id="search", placeholder="start of a PCN, or a claim id")
                yield DataTable(id="claims", cursor_type="row", zebra_stripes=True)
                yield Static("", id="error", classes="error")
                with Horizontal(classes="buttons"):
                    yield Button("Cancel", id="cancel")
                    yield Button("Choose claim", id="ok", variant="primary")
            with Vertical(id="confirm"):
                yield Static("", id="comparison")
                yield Label("Note (optional) · Enter: go to Remap")
                yield Input(id="note", placeholder="optional")
                yield Static("", id="refusal", classes="error")
                with Horizontal(classes="buttons"):
                    yield Button("Back", id="back")
                    yield Button("Remap anyway", id="force", variant="warning")
                    yield Button("Remap", id="remap", variant="primary")

    def on_mount(self) -> None:
        table = self.query_one("#claims", DataTable)
        table.add_columns("claim", "PCN", "payer", "billed", "service", "score", "why")
        self._show_candidates()
        self.query_one("#confirm").display = False
        self.query_one("#force").display = False
        self.query_one("#search", Input).focus()

    def action_cancel(self) -> None:
        if not self.busy:  # a remap under way must report back, not vanish
            self.dismiss(None)

    # -- step 1: choose a claim ----------------------------------------------------------------

    def _show_candidates(self) -> None:
        sides = [
            ClaimSide(int(c["claim_id"]), c["patient_control_number"], c["payer_id"],
                      Decimal(c["billed_amount"]), c.get("service_date_from") or "")
            for c in self.candidates
        ]  # fmt: skip
        scores = {int(c["claim_id"]): (str(c["score"]), "; ".join(c.get("reasons", [])))
                  for c in self.candidates}  # fmt: skip
        self._fill(sides, scores)
        if not self.candidates:
            self.fail("The matcher found no candidate: search the claims.")

    def _fill(self, sides: list[ClaimSide], scores: dict[int, tuple[str, str]]) -> None:
        table = self.query_one("#claims", DataTable)
        table.clear()
        self.shown = {side.claim_id: side for side in sides}
        for side in sides:
            score, why = scores.get(side.claim_id, ("", "search"))
            why = why if len(why) <= 46 else why[:45] + "…"
            table.add_row(
                str(side.claim_id), plain(side.patient_control_number), plain(side.payer_id),
                money(side.billed), side.service_date, score, plain(why), key=str(side.claim_id),
            )  # fmt: skip

    @on(Input.Changed, "#search")
    def _search(self, event: Input.Changed) -> None:
        self._search_for(event.value)

    @on(Input.Submitted, "#search")
    def _search_entered(self, event: Input.Submitted) -> None:
        """Enter in the search searches (again); it never chooses a claim."""
        event.stop()
        self._search_for(event.value)

    def _search_for(self, text: str) -> None:
        term = text.strip()
        if not term:
            self.fail("")
            self._show_candidates()
            return
        self._run_search(term)

    @work(thread=True, exclusive=True, group="claim-search")
    def _run_search(self, term: str) -> None:
        self.post_message(self.Found(term, self.search(term)))

    def on_remap_dialog_found(self, found: Found) -> None:
        if found.term != self.query_one("#search", Input).value.strip():
            return  # an older search finished late
        sides = [
            ClaimSide(hit.claim_id, hit.patient_control_number, hit.payer_id, hit.billed_amount,
                      hit.service_date_from.isoformat() if hit.service_date_from else "")
            for hit in found.hits
        ]  # fmt: skip
        self._fill(sides, {})
        self.fail("" if found.hits else f"No claim id or PCN starting {found.term!r}.")

    def on_key(self, event: events.Key) -> None:
        """Typing while the claims have focus searches: the analyst should not have to find
        the search box again."""
        search = self.query_one("#search", Input)
        if isinstance(self.focused, DataTable) and event.is_printable and event.character:
            event.stop()
            search.focus()
            search.insert_text_at_cursor(event.character)

    def key_down(self, event: events.Key) -> None:
        if self.focused is self.query_one("#search", Input):
            event.stop()
            self.query_one("#claims", DataTable).focus()

    @on(DataTable.RowSelected)
    def _picked(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.submit()

    def submit(self) -> None:
        """The claim under the cursor, chosen: on to the confirmation."""
        table = self.query_one("#claims", DataTable)
        if table.row_count == 0:
            self.fail("Search for a claim first.")
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        self.chosen = self.shown[int(str(row_key.value))]
        self._compare(())
        if self.prepare is not None:
            self._prepare(self.prepare, self.chosen.claim_id)
        self._refuse("", force=False)
        self.query_one("#pick").display = False
        self.query_one("#confirm").display = True
        self.query_one("#note", Input).focus()

    def _compare(self, warnings: tuple[str, ...]) -> None:
        assert self.chosen is not None
        shown, differs = comparison(self.payment, self.chosen)
        said = f"Differs: {', '.join(differs)}." if differs else "Payer, PCN and amounts agree."
        title = Text(f"Remap to claim {self.chosen.claim_id}?", style="bold")
        parts: list[RenderableType] = [title, shown, Text(said, style="bold" if differs else "")]
        if warnings:  # the service's own words: it will ask for "Remap anyway"
            told = "; ".join(warnings)
            parts.append(plain(f"The service will ask to confirm: {told}.", "bold red"))
        self.query_one("#comparison", Static).update(Group(*parts))

    @work(thread=True, exclusive=True, group="remap-prepare", exit_on_error=False)
    def _prepare(self, prepare: Callable[[int], RemapFacts], claim_id: int) -> None:
        try:
            facts: RemapFacts | None = prepare(claim_id)
        except Exception as error:  # a courtesy: Remap itself still says what is wrong
            log.warning("remap warnings could not be read: %s", type(error).__name__)
            facts = None
        self.post_message(self.Prepared(claim_id, facts))

    def on_remap_dialog_prepared(self, prepared: Prepared) -> None:
        chosen = self.chosen
        if prepared.facts is None or chosen is None or chosen.claim_id != prepared.claim_id:
            return  # failed, or the analyst went back and chose another claim meanwhile
        self.chosen = replace(chosen, payer_name=prepared.facts.payer_name)
        self._compare(prepared.facts.warnings)

    # -- step 2: confirm -----------------------------------------------------------------------

    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        if self.busy:
            return
        self._refuse("", force=False)
        self.query_one("#confirm").display = False
        self.query_one("#pick").display = True
        self.query_one("#claims", DataTable).focus()

    @on(Input.Submitted, "#note")
    def _note_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#remap", Button).focus()

    @on(Button.Pressed, "#remap")
    def _remap_pressed(self) -> None:
        self._go(force=False)

    @on(Button.Pressed, "#force")
    def _force_pressed(self) -> None:
        self._go(force=True)

    def _go(self, *, force: bool) -> None:
        if self.busy or self.chosen is None:
            return
        self.busy = True
        for button in self.query(Button):
            button.disabled = True
        self._refuse("Remapping…", force=False)
        self._call(self.chosen.claim_id, self.query_one("#note", Input).value.strip(), force)

    @work(thread=True, exclusive=True, group="remap-call", exit_on_error=False)
    def _call(self, claim_id: int, note: str, force: bool) -> None:
        options: dict[str, Any] = {"claim_id": claim_id, "note": note}
        if force and accepts_force(self.remap):
            options["force"] = True
        try:
            done = self.remap(**options)
        except Exception as error:  # said in the dialog, never raised into the app
            if not needs_force(error):
                log.warning("remap from the console failed: %s", type(error).__name__)
            self.post_message(self.Done(None, error))
            return
        self.post_message(self.Done(done, None))

    def on_remap_dialog_done(self, done: Done) -> None:
        self.busy = False
        for button in self.query(Button):
            button.disabled = False
        if done.error is None:
            self.dismiss(done.result)
            return
        if needs_force(done.error):
            problems = getattr(done.error, "problems", ()) or (str(done.error),)
            offer = accepts_force(self.remap)
            said = "; ".join(map(str, problems))
            then = " Check the comparison; Remap anyway if it is right." if offer else ""
            self._refuse(f"The service refused this claim: {said}.{then}", force=offer)
            if offer:  # the next decision is that one (Escape or Back still leave)
                self.query_one("#force", Button).focus()
            return
        self._refuse(describe_error("remap", done.error)[0], force=False)

    def _refuse(self, message: str, *, force: bool) -> None:
        self.query_one("#refusal", Static).update(plain(message))
        self.query_one("#force").display = force
