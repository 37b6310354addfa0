"""One work item, everything about it in one place: the claim and the payment with its
adjustments, the payer's raw segments with this claim's CLP loop highlighted, the matcher's
candidates, the journal lines its posting is (or would be), and its whole history.

The item is read in a thread worker that posts a :class:`DetailScreen.Loaded` message; the
widgets are only touched in its handler, on the UI side. PHI (patient name, member id, date of
birth) shows masked until ``p`` asks for a reason and reveals it through the triage service,
which audits the reveal. The raw segments stay masked either way.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from claimsync_console.console.action_messages import Failed, describe_error
from claimsync_console.console.actions import ACTION_KEYS, LABELS, ActionFinished, ActionRunner
from claimsync_console.console.modals import NoteDialog, money
from claimsync_console.console.palette import runner_for
from claimsync_console.console.widgets.fmt import PlainTable, plain
from claimsync_console.console.widgets.footer import AdaptiveFooter
from claimsync_console.engine.console_detail import ItemView, load_item_view
from claimsync_console.engine.triage_model import RevealedPhi

MASK = "••••••"


class DetailScreen(Screen[None]):
    """``DetailScreen(item_id)``; the app must have a ``backend`` (a ConsoleBackend)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        *(
            Binding(key, f"act('{action}')", LABELS[action][0])
            for action, key in ACTION_KEYS.items()
        ),
        Binding("p", "reveal", "Reveal"),
        Binding("f5", "reload", "Reload", show=False),  # in ? and the palette
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
    ]
    CSS_PATH = Path(__file__).with_name("detail.tcss")

    class Loaded(Message):
        """The thread worker's result: the item's view, or the error reading it."""

        def __init__(self, view: ItemView | None, error: BaseException | None = None) -> None:
            super().__init__()
            self.view, self.error = view, error

    def __init__(self, item_id: int) -> None:
        super().__init__()
        self.item_id = item_id
        self.view: ItemView | None = None
        self.revealed: RevealedPhi | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"Work item {self.item_id}", id="title")
        yield Static(self._phi_text(), id="phi")
        with Horizontal(id="body"):
            with VerticalScroll(id="left"):
                yield Static("Loading…", id="summary", classes="section")
                yield Static("", id="candidates", classes="section")
                yield Static("", id="posting", classes="section")
                yield Static("", id="history", classes="section")
            with VerticalScroll(id="right"):
                yield Static("", id="segments", classes="section")
        yield AdaptiveFooter()

    def on_mount(self) -> None:
        self.load()

    # -- loading -------------------------------------------------------------------------------

    @property
    def backend(self) -> Any:
        return self.app.backend  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="detail-load", exit_on_error=False)
    def load(self) -> None:
        triage = self.backend.triage
        try:
            view = load_item_view(
                self.backend.sessions, triage.rules, self.item_id, now=triage.now_fn()
            )
        except Exception as error:  # said on screen, never raised into the app
            self.post_message(self.Loaded(None, error))
            return
        self.post_message(self.Loaded(view))

    def on_detail_screen_loaded(self, loaded: Loaded) -> None:
        if loaded.view is None:
            message, _ = describe_error("open", loaded.error or RuntimeError("no view"))
            self.query_one("#summary", Static).update(plain(message))
            return
        self.view = loaded.view
        self._render_view(loaded.view)

    def on_action_finished(self, finished: ActionFinished) -> None:
        if finished.item_ids:  # none: cancelled or refused before it ran, nothing changed
            self.load()

    def action_reload(self) -> None:
        self.load()

    def action_scroll_down(self) -> None:
        self.query_one("#left", VerticalScroll).scroll_down()

    def action_scroll_up(self) -> None:
        self.query_one("#left", VerticalScroll).scroll_up()

    # -- actions -------------------------------------------------------------------------------

    def action_targets(self) -> list[int]:
        return [self.item_id]

    def action_versions(self) -> dict[int, int]:
        return {} if self.view is None else {self.item_id: int(self.view.item["version"])}

    def action_act(self, action: str) -> None:
        runner: ActionRunner = runner_for(self.app)
        runner.start(action, self.action_targets(), versions=self.action_versions())

    @work(exclusive=True, group="reveal", exit_on_error=False)
    async def action_reveal(self) -> None:
        """Ask why, reveal through the service (which audits it), show until the screen
        closes. A refusal or an error is said, and the PHI stays masked."""
        reason = await self.app.push_screen_wait(
            NoteDialog(
                f"Reveal PHI for work item {self.item_id}",
                "Reason (recorded in the audit trail)",
                ok="Reveal",
            )
        )
        if reason is None:
            return
        triage = self.backend.triage

        def reveal() -> RevealedPhi | Failed:
            try:
                return triage.reveal_phi(self.item_id, reason)
            except Exception as error:
                return Failed(error)

        shown = await self.app.run_worker(reveal, thread=True, exit_on_error=False).wait()
        if isinstance(shown, Failed):
            message, severity = describe_error("reveal PHI", shown.error)
            self.app.notify(message, severity=severity, markup=False)  # type: ignore[arg-type]
            return
        self.revealed = shown
        self.query_one("#phi", Static).update(self._phi_text())
        self.app.notify(f"PHI revealed for work item {self.item_id}; the reveal is audited.")
        self.load()  # the history shows the reveal's audit row (the PHI line is kept)

    # -- rendering -----------------------------------------------------------------------------

    def _phi_text(self) -> Text:
        shown = self.revealed
        name = shown.patient_name if shown else MASK
        member = shown.member_id if shown else MASK
        born = shown.date_of_birth if shown else MASK
        text = Text.assemble(
            ("Patient ", "bold"), name or "-", ("  Member id ", "bold"), member or "-",
            ("  Date of birth ", "bold"), born or "-",
        )  # fmt: skip
        if shown is None:
            text.append("   (p reveals, audited)", style="dim")
        return text

    def _render_view(self, view: ItemView) -> None:
        item = view.item
        title = (
            f"Work item {item['id']} · {item['kind']} · {item['state']} · "
            f"{_amount(item)} · {item['payer_name'] or item['payer_id']} · "
            f"v{item['version']}"
        )
        self.query_one("#title", Static).update(plain(title))  # the payer's name, as it is
        self.query_one("#summary", Static).update(_summary(view))
        self.query_one("#candidates", Static).update(_candidates(view))
        self.query_one("#posting", Static).update(_posting(view))
        self.query_one("#history", Static).update(_history(view))
        self.query_one("#segments", Static).update(_segments(view))


# -- renderables (pure functions of the view) -------------------------------------------------


MONEY_COLUMNS = frozenset({"amount", "billed", "debit", "credit"})


#: the label column of the field/value tables, so their values line up under each other
LABEL_WIDTH = 28


def _table(title: str, *columns: str, header: bool = True) -> Table:
    """A titled, borderless table. Field/value tables (no header) stay compact, labels at a
    fixed width, instead of spreading two columns across the whole pane."""
    table = PlainTable(  # its str cells are data (payer's, ERP's): never read as markup
        title=plain(title, "bold"), title_justify="left", expand=header, box=None,
        show_header=header,
    )  # fmt: skip
    for column in columns:
        money_column = column in MONEY_COLUMNS
        table.add_column(column, overflow="fold", justify="right" if money_column else "left")
    if not header:
        table.columns[0].min_width = LABEL_WIDTH
    return table


def _request(view: ItemView) -> RenderableType | None:
    """An approval's request, first thing on the page: a supervisor must see who asks, on
    which item, for what and why before approving (the requester's note is in the approval's
    ``details.origin``; the request's audit row is on the origin item, not on this one)."""
    item = view.item
    if item["kind"] != "approval":
        return None
    details = item.get("details") or {}
    origin = details.get("origin") or {}
    write_off = bool(origin) or (details.get("posting") or {}).get("kind") == "write_off"
    table = _table("Write-off request" if write_off else "Approval request", "field", "value",
                   header=False)  # fmt: skip
    table.add_row("requested by", item.get("requested_by") or "-")
    table.add_row("requested at", (item["created_at"] or "")[:19].replace("T", " "))
    if (o := view.origin) is not None:
        said = f"{o['id']} · {o['kind']} · {money(o['amount'])} · {o['state']}"
        table.add_row("origin item", said)
    elif origin:
        table.add_row("origin item", str(origin.get("work_item_id", "-")))
    what = "write off" if write_off else str(details.get("approval_kind", "adjustment"))
    reason = details.get("reason_code") or "-"
    table.add_row("requested", f"{what} {money(item['amount'])} as {reason}")
    if limit := details.get("threshold"):
        role = details.get("required_role") or "supervisor"
        table.add_row("why approval", f"over the limit of {money(limit)}: a {role} decides")
    if details.get("beyond_all_tiers"):  # no tier reaches the amount: the top role decides
        role = details.get("required_role") or "supervisor"
        table.add_row("limits", f"beyond every approval limit: flagged (a {role} decides)")
    if write_off:
        table.add_row("note", origin.get("note") or "-")
    return table


def _amount(item: dict[str, Any]) -> str:
    """The item's amount for its header. After write-offs in parts the item's own amount is
    only the last part (a written-off item keeps what was open before its last write-off), so
    what was written off in all is said instead, or beside what is still open."""
    taken = [w for w in (item.get("details") or {}).get("write_offs", [])
             if not w.get("reversed_by")]  # fmt: skip
    if not taken:
        return money(item["amount"])
    total = sum((Decimal(str(w["amount"])) for w in taken), Decimal(0))
    parts = f" in {len(taken)} parts" if len(taken) > 1 else ""
    if item["state"] == "written_off":  # one part: the item's amount is all of it
        return f"written off {money(total)}{parts}" if parts else money(total)
    return f"{money(item['amount'])} open, {money(total)} written off{parts}"


def _summary(view: ItemView) -> RenderableType:
    item, parts = view.item, []
    if (request := _request(view)) is not None:
        parts.append(request)
    facts = _table("Item", "field", "value", header=False)
    facts.add_row("error", item["error"] or "-")
    facts.add_row("patient control no.", item["patient_control_number"] or "-")
    facts.add_row("trace (TRN02)", item["trace_number"] or "-")
    facts.add_row("assigned to", item["assigned_to"] or "-")
    facts.add_row("created", (item["created_at"] or "")[:19].replace("T", " "))
    parts.append(facts)
    if view.claim is not None:
        claim = _table("Claim (837)", "field", "value", header=False)
        for key in ("id", "patient_control_number", "payer", "billing_provider", "service_dates",
                    "frequency_code", "payer_claim_control_number"):  # fmt: skip
            claim.add_row(key.replace("_", " "), str(view.claim[key] or "-"))
        claim.add_row("billed", money(view.claim["billed_amount"]))
        parts.append(claim)
    if view.payment is not None:
        pay = view.payment
        paid = _table("Payment (835 CLP)", "field", "value", header=False)
        paid.add_row("status", str(pay["status_code"]))
        paid.add_row("charge / paid", f"{money(pay['charge'])} / {money(pay['paid'])}")
        if pay["patient_responsibility"] is not None:
            paid.add_row("patient resp.", money(pay["patient_responsibility"]))
        paid.add_row("payer claim no.", pay["payer_claim_control_number"] or "-")
        parts.append(paid)
        adjustments = _table("Adjustments (CAS)", "level", "group", "CARC", "amount")
        for level, group, code, amount in pay["adjustments"]:
            adjustments.add_row(level, group, code, money(amount))
        parts.append(adjustments)
    return Group(*parts)


def _candidates(view: ItemView) -> RenderableType:
    if view.item["kind"] != "unmatched_remittance":
        return Text("")
    if not view.candidates:
        return Text("Candidates: none scored; remap (m) searches the claims.", style="dim")
    table = _table("Candidate claims", "claim", "PCN", "billed", "service", "score", "why")
    for c in view.candidates:
        table.add_row(
            str(c["claim_id"]), c["patient_control_number"], money(c["billed_amount"]),
            c.get("service_date_from") or "", str(c["score"]), "; ".join(c.get("reasons", [])),
        )  # fmt: skip
    why = table.columns[-1]  # one line a candidate: the rest of the reasons behind an ellipsis
    why.overflow, why.no_wrap, why.ratio = "ellipsis", True, 1
    return table


def _posting(view: ItemView) -> RenderableType:
    preview = view.posting
    if preview is None:
        return Text("Posting: nothing to post.", style="dim")
    if not preview.lines:
        return Text.assemble((f"Posting: {preview.title}\n", "bold"), preview.note)
    table = _table(f"Posting: {preview.title}", "account", "debit", "credit", "memo")
    debits = sum((ln.debit for ln in preview.lines), Decimal(0))
    credits = sum((ln.credit for ln in preview.lines), Decimal(0))
    for ln in preview.lines:
        table.add_row(ln.account, _cell(ln.debit), _cell(ln.credit), ln.memo)
    table.add_row("total", money(debits), money(credits), "", style="bold")
    return table


def _cell(amount: Decimal) -> str:
    return money(amount) if amount else ""


def _history(view: ItemView) -> RenderableType:
    table = _table("History", "when", "who", "what", "detail")
    rows: list[tuple[str, str, str, str]] = []
    for a in view.history:
        detail = " ".join(x for x in (a["target"], a["reason"], a["note"]) if x)
        rows.append(((a["at"] or "")[:19], f"{a['operator']} ({a['role']})", a["action"], detail))
    for t in view.attempts:
        detail = f"{t['outcome']}: {t['error'] or 'ok'}"
        rows.append(((t["at"] or "")[:19], "worker", "attempt", detail))
    if view.item.get("requested_by"):  # an approval's request is audited on its origin item
        note = ((view.item.get("details") or {}).get("origin") or {}).get("note") or ""
        at = (view.item["created_at"] or "")[:19]
        rows.append((at, view.item["requested_by"], "requested", note))
    for when, who, what, detail in sorted(rows):
        table.add_row(when.replace("T", " "), who, what, detail)
    if not rows:
        table.add_row("-", "-", "-", "no actions, audit rows or attempts yet")
    if view.outbox is not None:
        box = view.outbox
        caption = f"outbox {box['id']}: {box['status']}, {box['attempts']} attempt(s)" + (
            f", last error: {box['last_error']}" if box["last_error"] else ""
        )
        table.caption = plain(caption, "table.caption")  # the ERP's error, as it is
    return table


def _segments(view: ItemView) -> RenderableType:
    """A grid, so a long segment folds inside its own column and its number stays beside it
    (as one text, a segment with no spaces wrapped whole onto the line under its number)."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True, style="dim", width=5)
    grid.add_column(overflow="fold")
    for line in view.segments:
        if line.skipped:
            grid.add_row("…", Text(f"{line.skipped} segments of other claims …", style="dim"))
        style = "bold reverse" if line.in_loop else ""
        grid.add_row(str(line.index), Text(line.text + "~", style=style))
    if view.segments_truncated:
        grid.add_row("…", Text("(truncated)", style="dim"))
    if not view.segments:
        grid.add_row("", Text("no source segments stored for this item", style="dim"))
    title = Text("Raw X12 (PHI masked; this claim's loop highlighted)", style="bold")
    return Group(title, grid)
