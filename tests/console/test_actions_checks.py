"""An action on the wrong kind of item is refused in one notice before any dialog; the write-off
dialog checks its amount itself; a bulk write-off counts what went to a supervisor apart from
what was done, and offers the items' shared CARC; and a supervisor sees what they approve."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from claimsync_console.console.modals import ConfirmDialog, Dialog, WriteOffDialog
from claimsync_console.console.screens.detail import DetailScreen
from claimsync_console.engine.console_checks import MarkedItem, action_refusal, common_carc
from tests.console.detail_world import (
    DetailApp,
    World,
    dialog,
    finished,
    last_audit,
    loaded,
    run,
    settle,
    type_into,
    world_fixture,
)
from tests.engine.triage_support import sqlite_template_fixture

__all__ = ["sqlite_template_fixture", "world_fixture"]  # the fixtures, for pytest

D = Decimal


def text_of(widget: Static) -> str:
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.export_text()


def no_dialog_was_opened(app: DetailApp) -> bool:
    return not any(isinstance(screen, Dialog) for screen in app.screen_stack)


# --------------------------------------------------------------------------- applicability


def test_actions_on_the_wrong_kind_are_refused_before_any_dialog(world: World) -> None:
    unmatched = [i.id for i in world.items("unmatched_remittance")[:2]]
    app = DetailApp(world.backend())

    async def scenario(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for n, (action, ids) in enumerate(
            [("remap", unmatched), ("approve", unmatched[:1]), ("write_off", unmatched[:1])], 1
        ):
            app.action_runner.start(action, ids)
            await finished(pilot, n)  # a dialog would have stopped the runner here
            assert no_dialog_was_opened(app)

    run(app, scenario)
    first, second = unmatched
    assert [said for said, _ in app.said] == [
        f"Cannot reprocess the 2 marked items: 2 are unmatched_remittance items ({first},"
        f" {second}); reprocess applies to mapping_error items. A remap to a claim takes one"
        " item at a time.",
        f"Cannot approve: work item {first} is an unmatched_remittance item; approve applies"
        " to approval items.",
        f"Cannot write off: work item {first} is an unmatched_remittance item; write off"
        " applies to denial or rejected_claim items.",
    ]
    assert all(severity == "warning" for _, severity in app.said)
    assert all(f.item_ids == [] for f in app.finished)  # refused: the marks stay
    assert [world.item(i).state for i in unmatched] == ["open", "open"]


def test_a_wrong_key_on_the_detail_costs_one_notice(world: World) -> None:
    item = world.items("unmatched_remittance")[0]
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("w")
        await finished(pilot)
        assert no_dialog_was_opened(app)

    run(app, scenario)
    assert len(app.said) == 1 and app.said[0][0].startswith("Cannot write off: work item")


def test_the_refusal_names_every_problem_of_a_mixed_selection() -> None:
    items = [MarkedItem(7, "denial", "open"), MarkedItem(58, "approval", "open"),
             MarkedItem(9, "denial", "written_off"), MarkedItem(99, "", "missing")]  # fmt: skip
    assert action_refusal("write_off", items) == (
        "Cannot write off the 4 marked items: 1 is an approval item (58); 1 is written_off (9);"
        " 1 is gone (99); write off applies to denial or rejected_claim items."
        " Unmark those and try again."
    )
    assert action_refusal("ignore", [MarkedItem(7, "denial", "ignored")]) == (
        "Cannot ignore: work item 7 is ignored; ignore needs open or in_progress items."
    )
    assert action_refusal("ignore", items[:2]) is None  # ignore takes any open item
    assert action_refusal("remap", [MarkedItem(1, "unmatched_remittance", "open")]) is None
    assert action_refusal("remap", [MarkedItem(1, "mapping_error", "in_progress")] * 2) is None
    assert action_refusal("reverse", [MarkedItem(1, "denial", "written_off")]) is None


# --------------------------------------------------------------------------- write off


def test_a_bad_amount_keeps_the_write_off_dialog_open_with_the_note(world: World) -> None:
    item = world.denial()
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("w")
        form = await dialog(pilot, WriteOffDialog)
        problem = form.query_one("#amount-error", Static)
        assert not problem.display
        for typed, said in (("20.005", "is not an amount"),
                            ("600", f"only ${item.amount:,.2f} is open")):  # fmt: skip
            await type_into(pilot, "#amount", typed)
            await type_into(pilot, "#note", "small balance")
            await pilot.press("enter")
            assert pilot.app.screen is form and problem.display
            assert said in str(problem.render())
            assert form.query_one("#note", Input).value == "small balance"
        await type_into(pilot, "#amount", "20")
        assert not problem.display
        await type_into(pilot, "#note", "small balance")
        await pilot.press("enter")
        await finished(pilot)

    run(app, scenario)
    said, _ = app.said[-1]
    assert "$20.00" in said and "written off" in said and " 20 " not in said
    assert last_audit(world, item.id, "write_off").note == "small balance"


def test_bulk_write_off_counts_approvals_apart_and_offers_the_shared_carc(world: World) -> None:
    small = next(i for i in world.items("denial") if i.details["carcs"] == ["CO-197"]
                 and i.amount <= 500)  # fmt: skip
    big = next(i for i in world.items("denial") if i.details["carcs"] == ["CO-197"]
               and i.amount > 500)  # fmt: skip
    app = DetailApp(world.backend(), typed_above=5)

    async def scenario(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.action_runner.start("write_off", [small.id, big.id])
        form = await dialog(pilot, WriteOffDialog)
        assert form.query_one("#reason", Select).value == "CO-197"
        assert "all CO-197" in form.title_text
        await type_into(pilot, "#note", "not worth appealing")
        await pilot.press("enter")
        await dialog(pilot, ConfirmDialog)
        await pilot.press("enter")
        await finished(pilot)

    run(app, scenario)
    approval = world.item(big.id).details["pending_approval"]
    said, severity = app.said[-1]
    assert said == f"Write off: 1 done, 1 sent for approval (approval item {approval}), 0 failed"
    assert severity == "warning"  # something still waits for someone
    assert world.item(small.id).state == "written_off" and world.item(big.id).state == "open"
    assert world.item(approval).kind == "approval"


def test_bulk_write_off_of_mixed_reasons_says_so(world: World) -> None:
    one = next(i for i in world.items("denial") if i.details["carcs"] == ["CO-197"])
    other = next(i for i in world.items("denial") if i.details["carcs"] == ["CO-50"])
    app = DetailApp(world.backend(), typed_above=5)

    async def scenario(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.action_runner.start("write_off", [one.id, other.id])
        form = await dialog(pilot, WriteOffDialog)
        assert "mixed reasons" in form.title_text
        assert form.query_one("#reason", Select).value == sorted(world.rules.write_offs)[0]
        await pilot.press("escape")
        await finished(pilot)

    run(app, scenario)
    assert app.finished[-1].item_ids == []
    known = list(world.rules.write_offs)
    assert common_carc([MarkedItem(1, "denial", "open", ("CO-197", "CO-45"))] * 2, known) == (
        "CO-197"
    )
    assert common_carc([MarkedItem(1, "denial", "open")], known) is None


# --------------------------------------------------------------------------- approvals


def test_the_approval_detail_shows_the_request(world: World) -> None:
    denial = next(i for i in world.items("denial") if i.amount > 500)
    asked = world.backend("alice", "analyst").triage.write_off(
        denial.id, reason="CO-197", note="payer will never pay this"
    )
    assert asked.action == "write_off_requested" and asked.related_item_id is not None
    app = DetailApp(world.backend("bob", "supervisor"), asked.related_item_id)

    async def scenario(pilot: Pilot[Any]) -> None:
        screen: DetailScreen = await loaded(pilot)
        summary = text_of(screen.query_one("#summary", Static))
        history = text_of(screen.query_one("#history", Static))
        assert "Write-off request" in summary
        assert "requested by" in summary and "alice" in summary
        assert f"{denial.id} · denial · ${denial.amount:,.2f} · open" in summary
        assert f"write off ${denial.amount:,.2f} as CO-197" in summary
        assert "payer will never pay this" in summary
        assert "requested" in history and "no actions, audit rows" not in history

    run(app, scenario)
