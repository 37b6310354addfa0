"""The remap dialog never remaps by accident: the search box has focus first, Enter there only
searches, a claim must be chosen and then confirmed next to the payment (differences
highlighted), and a refusal from the service is shown in the dialog, with "Remap anyway" when
the service asks for ``force``."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Static

from claimsync_console.console.remap_dialog import (
    ClaimSide,
    RemapDialog,
    RemapPayment,
    accepts_force,
    comparison,
)
from claimsync_console.engine.console_detail import load_item_view
from claimsync_console.engine.triage_model import ConflictError, UsageError
from tests.console.detail_world import (
    DetailApp,
    World,
    dialog,
    finished,
    last_audit,
    loaded,
    run,
    type_into,
    until,
)
from tests.engine.triage_support import NOW

D = Decimal


class RemapNeedsForce(UsageError):
    """Stands in for the service's own (the dialog knows it by name only)."""

    def __init__(self, item_id: int, problems: tuple[str, ...]) -> None:
        super().__init__("refused: " + "; ".join(problems), item_id=item_id)
        self.problems = problems


def text_of(widget: Static) -> str:
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.export_text()


async def press(pilot: Pilot[Any], selector: str) -> None:
    """Click a button once it can be clicked again: a Button ignores clicks during its 0.2 s
    press effect, and a refusal's line may have moved it."""
    button = pilot.app.screen.query_one(selector)
    await until(pilot, lambda: not button.has_class("-active"), f"{selector} ready")
    await pilot.pause()
    await pilot.click(selector)


def test_a_stray_enter_after_m_does_not_remap(world: World) -> None:
    item = world.items("unmatched_remittance")[0]
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("m")
        picker = await dialog(pilot, RemapDialog)
        assert picker.focused is picker.query_one("#search", Input)
        await pilot.press("enter", "enter", "enter")
        await pilot.pause()
        assert pilot.app.screen is picker and not picker.query_one("#confirm").display
        assert picker.focused is picker.query_one("#search", Input)
        await pilot.press("escape")
        await finished(pilot)

    run(app, scenario)
    assert world.item(item.id).state == "open"
    assert app.finished[-1].item_ids == []  # cancelled: nothing was acted on


def test_enter_in_the_search_searches_and_chooses_nothing(world: World) -> None:
    item = world.items("unmatched_remittance")[1]
    app = DetailApp(world.backend(), item.id)
    prefix = item.patient_control_number[:3]

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("m")
        picker = await dialog(pilot, RemapDialog)
        await pilot.press(*prefix, "enter")
        table = picker.query_one("#claims", DataTable)
        await until(pilot, lambda: str(table.get_row_at(0)[-1]) == "search", "the search's hits")
        assert not picker.query_one("#confirm").display
        assert picker.focused is picker.query_one("#search", Input)
        await pilot.press("escape")
        await finished(pilot)

    run(app, scenario)
    assert world.item(item.id).state == "open"


def test_the_confirmation_shows_the_payment_beside_the_claim(world: World) -> None:
    item = world.items("unmatched_remittance")[0]
    first = item.details["candidates"][0]
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("m")
        picker = await dialog(pilot, RemapDialog)
        await pilot.press("down", "enter")
        assert picker.query_one("#confirm").display and not picker.query_one("#pick").display
        shown = text_of(picker.query_one("#comparison", Static))
        assert f"Remap to claim {first['claim_id']}?" in shown
        assert item.patient_control_number in shown and first["patient_control_number"] in shown
        assert f"charge ${D(item.details['charge']):,.2f}" in shown
        assert f"billed ${D(first['billed_amount']):,.2f}" in shown
        assert "Differs: PCN, amount" in shown
        assert "Enter: go to Remap" in text_of(picker.query_one("#confirm Label", Label))
        await pilot.press("enter")  # Enter in the note only moves to the Remap button
        assert pilot.app.screen is picker and picker.focused is picker.query_one("#remap")
        await pilot.click("#back")
        assert picker.query_one("#pick").display
        await pilot.press("escape")
        await finished(pilot)

    run(app, scenario)
    assert world.item(item.id).state == "open"


def test_the_confirmation_names_the_claims_payer_and_the_services_warnings(world: World) -> None:
    """Before Remap is pressed: the claim's payer with its name, like the payment's, and what
    the service would refuse the remap for (here the claim already has a payment)."""
    item = world.items("unmatched_remittance")[0]
    first = item.details["candidates"][0]
    warned = world.backend().triage.remap_warnings(item.id, first["claim_id"])
    active = next(w for w in warned if "already has an active payment" in w)
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("m")
        picker = await dialog(pilot, RemapDialog)
        await pilot.press("down", "enter")
        shown = picker.query_one("#comparison", Static)
        await until(pilot, lambda: "will ask to confirm" in text_of(shown), "the warnings")
        said = " ".join(text_of(shown).split())
        assert said.count(f"{first['payer_id']} ({item.payer_name})") == 2, said
        assert active in said and "paid $" in active  # the service's words, in dollars
        await pilot.press("escape")
        await finished(pilot)

    run(app, scenario)
    assert world.item(item.id).state == "open"


def test_comparison_highlights_each_difference() -> None:
    payment = RemapPayment("SMPAE", "ACME", "PCN1", D("100.00"), D("80.00"), "2026-01-02")
    same = ClaimSide(7, "PCN1", "SMPAE", D("100.00"), "2026-01-02")
    _, differs = comparison(payment, same)
    assert differs == []
    other = ClaimSide(8, "PCN2", "SMPBC", D("120.00"), "2026-01-05")
    table, differs = comparison(payment, other)
    assert differs == ["payer", "PCN", "amount", "service date"]
    cells = table.columns[2]._cells
    assert all("on yellow" in str(cell.style) for cell in cells)


def test_a_refusal_is_said_in_the_dialog_and_remap_anyway_forces(world: World) -> None:
    item = world.items("unmatched_remittance")[0]
    claim = item.details["candidates"][0]["claim_id"]
    backend = world.backend()
    real, calls = backend.triage.remap, []

    def remap(item_id: int, *, claim_id: int, note: str = "", expected_version: Any = None,
              force: bool = False) -> Any:  # fmt: skip
        calls.append(force)
        if not force:
            raise RemapNeedsForce(item_id, ("the claim is another payer's (SMPBC)",))
        more = {"force": True} if accepts_force(real) else {}
        return real(item_id, claim_id=claim_id, note=note, expected_version=expected_version,
                    **more)  # fmt: skip

    backend.triage.remap = remap  # type: ignore[method-assign]
    app = DetailApp(backend, item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("m")
        picker = await dialog(pilot, RemapDialog)
        await pilot.press("down", "enter")
        await type_into(pilot, "#note", "the payer merged")
        await pilot.click("#remap")
        force = picker.query_one("#force")
        await until(pilot, lambda: bool(force.display), "Remap anyway offered")
        said = str(picker.query_one("#refusal", Static).render())
        assert "refused this claim: the claim is another payer's (SMPBC)" in said
        assert "Traceback" not in said and pilot.app.screen is picker
        assert picker.query_one("#note", Input).value == "the payer merged"
        await until(pilot, lambda: picker.focused is force, "the focus on Remap anyway")
        await press(pilot, "#force")
        await finished(pilot)

    run(app, scenario)
    assert calls == [False, True]
    assert world.item(item.id).claim_id == claim
    assert last_audit(world, item.id, "remap").note == "the payer merged"
    assert app.finished[-1].item_ids == [item.id]


def test_an_error_is_said_in_the_dialog_without_force_when_not_supported(world: World) -> None:
    item = world.items("unmatched_remittance")[0]
    backend = world.backend()
    said: list[str] = []

    def remap(item_id: int, *, claim_id: int, note: str = "", expected_version: Any = None) -> Any:
        if not said:
            raise RemapNeedsForce(item_id, ("the claim was paid already",))
        raise ConflictError(f"work item {item_id} changed since you loaded it", item_id=item_id)

    backend.triage.remap = remap  # type: ignore[method-assign]
    app = DetailApp(backend, item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("m")
        picker = await dialog(pilot, RemapDialog)
        await pilot.press("down", "enter")
        refusal = picker.query_one("#refusal", Static)
        await pilot.click("#remap")
        await until(pilot, lambda: "paid already" in str(refusal.render()), "the refusal")
        assert not picker.query_one("#force").display  # this service takes no force
        said.append(str(refusal.render()))
        await press(pilot, "#remap")
        await until(pilot, lambda: "Conflict:" in str(refusal.render()), "the conflict")
        await pilot.press("escape")
        await finished(pilot)

    run(app, scenario)
    assert world.item(item.id).state == "open"


def test_the_payment_side_comes_from_the_view(world: World) -> None:
    item = world.items("unmatched_remittance")[0]
    view = load_item_view(world.sessions, world.rules, item.id, now=NOW)
    side = RemapPayment.of(view.item, view.payment)
    assert side.payer_id == item.payer_id
    assert side.patient_control_number == item.patient_control_number
    assert side.charge == D(item.details["charge"]) and side.paid == item.amount


def test_at_100_columns_the_dialog_keeps_its_buttons_on_screen(world: World) -> None:
    import asyncio

    from textual.widgets import Button

    item = world.items("unmatched_remittance")[0]
    app = DetailApp(world.backend(), item.id)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot)
            await pilot.press("m")
            picker = await dialog(pilot, RemapDialog)
            await pilot.pause()
            shown = [b for b in picker.query(Button) if b.region.width]
            assert shown, "no button on screen"
            for button in shown:  # the others belong to the confirmation, not shown yet
                assert button.region.right <= 100, button.label

    asyncio.run(main())
