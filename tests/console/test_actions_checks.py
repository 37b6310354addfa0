"""An action on the wrong kind of item is refused in one notice before any dialog; the write-off
dialog checks its amount itself; a bulk write-off counts what went to a supervisor apart from
what was done, and offers the items' shared CARC; and a supervisor sees what they approve."""

from __future__ import annotations

import io
from dataclasses import replace
from decimal import Decimal
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from claimsync_console.console.modals import ConfirmDialog, Dialog, WriteOffDialog
from claimsync_console.console.screens.detail import DetailScreen
from claimsync_console.engine.console_checks import (
    MarkedItem,
    action_refusal,
    common_carc,
    write_off_outlook,
)
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
)

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
        f"Cannot remap the 2 marked items: 2 are Unmatched remittances ({first}, {second});"
        " a remap of several items applies to Mapping errors only (it reprocesses them)."
        " A remap to a claim takes one item at a time.",
        f"Cannot approve: work item {first} is an Unmatched remittance; approve applies to"
        " Approvals.",
        f"Cannot write off: work item {first} is an Unmatched remittance; write-off applies"
        " to Denials and Rejected claims.",
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
        "Cannot write off the 4 marked items: 1 is an Approval (58); 1 is written_off (9);"
        " 1 is gone (99); write-off applies to Denials and Rejected claims."
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


def test_a_typo_in_the_amount_is_refused_not_read_as_another_amount(world: World) -> None:
    """Typed key by key: a filter on the field turned ``1e2`` into 12 and ``-50`` into 50, and
    dropping the commas read ``1,00`` as 100 and ``12,50`` as 1250; each was posted."""
    item = world.denial()
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("w")
        form = await dialog(pilot, WriteOffDialog)
        field, problem = form.query_one("#amount", Input), form.query_one("#amount-error", Static)
        await type_into(pilot, "#note", "small balance")
        for typed in ("1e2", "-50", "1,00", "12,50"):
            field.value = ""
            field.focus()
            await pilot.press(*typed)
            assert field.value == typed
            await pilot.press("enter")
            assert pilot.app.screen is form and problem.display, typed
            said = text_of(problem)
            assert said.strip() and "1250" not in said and "1,250" not in said, said
            assert form.focused is field
        field.value = ""
        field.focus()
        await pilot.press("2", "0", "enter")
        await finished(pilot)

    run(app, scenario)
    row = last_audit(world, item.id, "write_off")
    assert row.after["write_off_amount"] == "20.00"
    assert "$20.00" in app.said[-1][0]
    assert world.item(item.id).amount == item.amount - D("20.00")


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
        confirm = await dialog(pilot, ConfirmDialog)
        assert text_of(confirm.query_one("#detail", Static)).startswith(
            "Reason: CO-197 (account 4150)."
        )
        await pilot.press("enter")
        await finished(pilot)

    run(app, scenario)
    approval = world.item(big.id).details["pending_approval"]
    said, severity = app.said[-1]
    assert said == f"Write off: 1 done, 1 sent for approval (approval item {approval}), 0 failed"
    assert severity == "warning"  # something still waits for someone
    assert world.item(small.id).state == "written_off" and world.item(big.id).state == "open"
    assert world.item(approval).kind == "approval"


def test_bulk_write_off_of_mixed_reasons_makes_the_analyst_choose(world: World) -> None:
    """No reason none of the items carries is preselected; the confirmation names the one
    chosen and what goes to approval."""
    one = next(i for i in world.items("denial") if i.details["carcs"] == ["CO-197"])
    other = next(i for i in world.items("denial") if i.details["carcs"] == ["CO-50"])
    app = DetailApp(world.backend(), typed_above=5)

    async def scenario(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.action_runner.start("write_off", [one.id, other.id])
        form = await dialog(pilot, WriteOffDialog)
        assert "mixed reasons" in form.title_text
        reason = form.query_one("#reason", Select)
        assert reason.value is Select.NULL and form.focused is reason
        await type_into(pilot, "#note", "not worth appealing")
        await pilot.press("enter")
        assert pilot.app.screen is form
        assert "Choose a reason" in text_of(form.query_one("#error", Static))
        reason.value = "CO-50"
        await pilot.pause()
        assert text_of(form.query_one("#error", Static)).strip() == ""
        form.query_one("#note", Input).focus()
        await pilot.press("enter")
        confirm = await dialog(pilot, ConfirmDialog)
        said = text_of(confirm.query_one("#detail", Static))
        assert "Reason: CO-50 (account 4150)." in said
        assert "Each item over $500.00 (the analyst limit for CO-50" in said
        await pilot.press("escape")
        await finished(pilot)

    run(app, scenario)
    assert app.finished[-1].item_ids == []
    assert [world.item(i.id).state for i in (one, other)] == ["open", "open"]
    known = list(world.rules.write_offs)
    assert common_carc([MarkedItem(1, "denial", "open", ("CO-197", "CO-45"))] * 2, known) == (
        "CO-197"
    )
    assert common_carc([MarkedItem(1, "denial", "open")], known) is None


def test_the_confirmation_says_how_many_go_to_approval_when_the_rules_tell(world: World) -> None:
    rules = world.rules
    assert write_off_outlook(rules, "CO-50", "supervisor", 3).endswith(
        "Each item over $10,000.00 (the supervisor limit for CO-50, earlier write-offs"
        " counted) goes to approval instead of posting."
    )
    assert write_off_outlook(rules, "CO-50", "clerk", 3) == (
        "Reason: CO-50 (account 4150). All 3 items go to approval: a clerk may not write off CO-50."
    )
    free = replace(rules, approvals={})
    assert write_off_outlook(free, "CO-50", "analyst", 3) == (
        "Reason: CO-50 (account 4150). None of the 3 items goes to approval."
    )


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


def test_a_request_beyond_every_approval_limit_is_flagged(world: World) -> None:
    """small_balance: an analyst up to $25, a supervisor up to $500; over that no tier
    reaches, and the supervisor must see it is beyond every limit."""
    denial = next(i for i in world.items("denial") if i.amount > 500)
    asked = world.backend("alice", "analyst").triage.write_off(
        denial.id, reason="small_balance", note="tiny"
    )
    beyond = asked.related_item_id
    assert beyond is not None and world.item(beyond).details["beyond_all_tiers"] is True
    small = next(i for i in world.items("denial") if 25 < i.amount <= 500)
    within = (
        world.backend("alice", "analyst")
        .triage.write_off(small.id, reason="small_balance", note="tiny")
        .related_item_id
    )
    summaries = []
    for approval in (beyond, within):
        app = DetailApp(world.backend("bob", "supervisor"), approval)

        async def scenario(pilot: Pilot[Any]) -> None:
            screen: DetailScreen = await loaded(pilot)
            summaries.append(text_of(screen.query_one("#summary", Static)))

        run(app, scenario)
    assert "beyond every approval limit: flagged (a supervisor decides)" in summaries[0]
    assert "beyond every approval limit" not in summaries[1]
