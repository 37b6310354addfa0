"""The item detail: what it shows (claim, payment, adjustments, the CLP loop highlighted in the
raw segments, candidates, the posting preview, the history), PHI masked until an audited reveal,
and snapshots of the screen and of every action dialog at a fixed size, on fixed data."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from claimsync_console.console.modals import (
    ConfirmDialog,
    NoteDialog,
    ReverseDialog,
    WriteOffDialog,
)
from claimsync_console.console.remap_dialog import RemapDialog
from claimsync_console.console.screens.detail import MASK, DetailScreen
from claimsync_console.console.screens.detail import _candidates as candidates_table
from claimsync_console.engine.claim_search import search_claims
from claimsync_console.engine.console_detail import REPROCESS, load_item_view, missing_note
from claimsync_console.engine.posting import MissingRules
from claimsync_console.engine.rules import MissingRule
from claimsync_console.store.queries_engine import get_payment_match
from tests.console.detail_world import (
    SIZE,
    DetailApp,
    World,
    dialog,
    finished,
    loaded,
    run,
    settle,
    type_into,
    until,
)
from tests.engine.triage_support import NOW


def shown(screen: DetailScreen, widget: str) -> str:
    """The widget's text as the operator reads it (a rich table rendered to plain text)."""
    content = screen.query_one(f"#{widget}", Static).content
    if isinstance(content, str):
        return content
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(content)
    return console.export_text()


# --------------------------------------------------------------------------- the read model


def test_the_view_flags_the_clp_loop_and_previews_the_posting(world: World) -> None:
    item = world.items("unmatched_remittance")[0]
    view = load_item_view(world.sessions, world.rules, item.id, now=NOW)
    loop = [s for s in view.segments if s.in_loop]
    assert view.payment is not None and loop[0].id == "CLP"
    assert loop[0].text.startswith(f"CLP*{view.payment['patient_control_number']}")
    assert loop[0].skipped > 0  # other claims of the check were left out
    assert view.segments[0].id == "ST" and not view.segments[0].in_loop
    assert all("[PHI]" in s.text for s in view.segments if s.id == "NM1" and s.in_loop)
    assert view.candidates == item.details["candidates"]
    assert view.posting is not None and view.posting.lines
    debits = sum(line.debit for line in view.posting.lines)
    assert debits == sum(line.credit for line in view.posting.lines)  # a balanced preview
    assert view.reversible == []


def test_a_mapping_error_previews_what_is_missing(world: World) -> None:
    item = next(i for i in world.items("mapping_error") if "CO-B7" in i.error)
    view = load_item_view(world.sessions, world.rules, item.id, now=NOW)
    assert view.posting is not None and not view.posting.lines
    assert view.posting.title == "The payment's entry, once its rules exist"
    assert view.posting.note == (
        "Cannot post yet: no posting rule for CO-B7 (group CO, reason B7)."
        " Add a rule, then remap --reprocess."
    )
    # the item has no claim of its own: the payment's match names it
    assert item.claim_id is None and view.claim is not None
    with world.sessions() as session:
        match = get_payment_match(session, item.claim_payment_id or 0)
    assert match is not None and view.claim["id"] == match.claim_id


def test_each_kind_of_item_titles_its_preview_for_what_it_is(world: World) -> None:
    titles = {
        kind: load_item_view(world.sessions, world.rules, world.items(kind)[0].id, now=NOW)
        for kind in ("unmatched_remittance", "dead_letter", "approval", "denial", "rejected_claim")
    }
    said = {k: v.posting.title if v.posting else "" for k, v in titles.items()}
    assert said["unmatched_remittance"] == "The payment's entry, once matched"
    assert said["dead_letter"].startswith("The entry the ERP refused (outbox ")
    assert said["approval"] == "Held for approval"
    assert said["denial"].startswith("If written off as CO-")
    assert said["rejected_claim"].startswith("If written off as CO-")


def test_missing_rules_are_said_plainly_with_what_to_do() -> None:
    plan = MissingRules("k", (MissingRule("carc", "OA-121"), MissingRule("payer", "SMPXX", "X")))
    assert missing_note(plan, REPROCESS) == (
        "Cannot post yet: no posting rule for OA-121 (group OA, reason 121); no payer rule for"
        " SMPXX (X). Add the rules, then remap --reprocess."
    )


def test_claim_search_by_pcn_prefix_and_by_id(world: World) -> None:
    hits = search_claims(world.sessions, "HOC")
    assert hits and all(h.patient_control_number.startswith("HOC") for h in hits)
    assert len(hits) <= 20
    by_id = search_claims(world.sessions, str(hits[0].claim_id))
    assert by_id[0].claim_id == hits[0].claim_id
    assert search_claims(world.sessions, " ") == [] and search_claims(world.sessions, "H") == []


# --------------------------------------------------------------------------- the screen


def test_the_detail_shows_everything_about_an_unmatched_payment(world: World) -> None:
    item = world.items("unmatched_remittance")[0]
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        screen = await loaded(pilot)
        assert f"Work item {item.id} · unmatched_remittance · open" in shown(screen, "title")
        summary = shown(screen, "summary")
        assert "Payment (835 CLP)" in summary and "Adjustments (CAS)" in summary
        assert "CO" in summary and "45" in summary
        candidates = shown(screen, "candidates")
        assert str(item.details["candidates"][0]["claim_id"]) in candidates
        assert "The payment's entry, once matched" in shown(screen, "posting")
        assert "CLP*" in shown(screen, "segments")
        assert MASK in shown(screen, "phi")

    run(app, scenario)


def test_a_candidates_reasons_stay_on_one_line(world: World) -> None:
    """Issue #4: a long "why" wrapped each candidate over several lines; now it is clipped."""
    item = world.items("unmatched_remittance")[0]
    view = load_item_view(world.sessions, world.rules, item.id, now=NOW)
    reasons = [f"reason number {n} that goes on for a while" for n in range(8)]
    long = replace(view, candidates=[{**c, "reasons": reasons} for c in view.candidates])
    console = Console(width=90, record=True, file=io.StringIO(), color_system=None)
    console.print(candidates_table(long))
    lines = console.export_text().rstrip().splitlines()
    assert len(lines) == 2 + len(view.candidates)  # the title, the header, one line each
    assert all(line.rstrip().endswith("…") for line in lines[2:])
    assert all(str(c["claim_id"]) in lines[2 + n] for n, c in enumerate(view.candidates))


def test_an_unknown_item_is_said_not_raised(world: World) -> None:
    app = DetailApp(world.backend(), 999_999)

    async def scenario(pilot: Pilot[Any]) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, DetailScreen)
        await until(pilot, lambda: "no work item" in shown(screen, "summary"), "the message")

    run(app, scenario)


def test_phi_is_masked_until_revealed_and_the_reveal_is_audited(world: World) -> None:
    item = world.denial()
    audits = len(world.audit())
    app = DetailApp(world.backend(), item.id)
    revealed = world.backend().triage.reveal_phi(item.id, "the expected identity")

    async def scenario(pilot: Pilot[Any]) -> None:
        screen = await loaded(pilot)
        assert MASK in shown(screen, "phi") and revealed.patient_name not in shown(screen, "phi")
        await pilot.press("p")
        await dialog(pilot, NoteDialog)
        await pilot.press("escape")  # cancelled: still masked, nothing audited
        await settle(pilot)
        assert MASK in shown(screen, "phi")
        await pilot.press("p")
        await dialog(pilot, NoteDialog)
        await type_into(pilot, "#note", "patient on the phone")
        await pilot.press("enter")
        await until(pilot, lambda: screen.revealed is not None, "the reveal")
        await pilot.pause()
        text = shown(screen, "phi")
        assert revealed.patient_name in text and revealed.member_id in text
        assert MASK not in text
        await until(  # the history reloads with the reveal in it, no F5
            pilot, lambda: "patient on the phone" in shown(screen, "history"), "the history"
        )
        assert revealed.patient_name in shown(screen, "phi")  # and the reveal stays

    run(app, scenario)
    rows = world.audit()[audits:]
    assert [(r.action, r.reason) for r in rows] == [
        ("reveal_phi", "the expected identity"),
        ("reveal_phi", "patient on the phone"),
    ]
    assert rows[-1].operator == "alice" and rows[-1].work_item_id == item.id
    assert revealed.patient_name not in f"{rows[-1].note}{rows[-1].target}{rows[-1].after}"


def test_the_detail_reloads_after_an_action(world: World) -> None:
    item = world.items("rejected_claim")[0]
    app = DetailApp(world.backend(), item.id)

    async def scenario(pilot: Pilot[Any]) -> None:
        screen = await loaded(pilot)
        await pilot.press("i")
        await dialog(pilot, NoteDialog)
        await type_into(pilot, "#note", "duplicate")
        await pilot.press("enter")
        await finished(pilot)
        await until(pilot, lambda: "ignored" in shown(screen, "title"), "the reload")
        assert "ignore" in shown(screen, "history") and "duplicate" in shown(screen, "history")

    run(app, scenario)


# --------------------------------------------------------------------------- snapshots


def _open(*keys: str, then: type | None = None) -> Any:
    async def before(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        for key in keys:
            await pilot.press(key)
        if then is not None:  # the action's worker waits for the dialog: do not settle
            await dialog(pilot, then)
            await pilot.pause()
        else:
            await settle(pilot)

    return before


def test_snapshot_detail_of_a_denial(world: World, snap_compare: Any) -> None:
    app = DetailApp(world.backend(), world.denial().id)
    assert snap_compare(app, terminal_size=SIZE, run_before=_open())


def test_snapshot_detail_of_an_unmatched_payment(world: World, snap_compare: Any) -> None:
    app = DetailApp(world.backend(), world.items("unmatched_remittance")[0].id)
    assert snap_compare(app, terminal_size=SIZE, run_before=_open())


def test_snapshot_write_off_dialog(world: World, snap_compare: Any) -> None:
    app = DetailApp(world.backend(), world.denial().id)
    assert snap_compare(app, terminal_size=SIZE, run_before=_open("w", then=WriteOffDialog))


def test_snapshot_remap_dialog(world: World, snap_compare: Any) -> None:
    app = DetailApp(world.backend(), world.items("unmatched_remittance")[0].id)
    assert snap_compare(app, terminal_size=SIZE, run_before=_open("m", then=RemapDialog))


def test_snapshot_ignore_dialog(world: World, snap_compare: Any) -> None:
    app = DetailApp(world.backend(), world.items("rejected_claim")[0].id)
    assert snap_compare(app, terminal_size=SIZE, run_before=_open("i", then=NoteDialog))


def test_snapshot_reverse_dialog(world: World, snap_compare: Any) -> None:
    item = world.denial()
    world.backend().triage.write_off(item.id, reason="CO-50", note="small")
    world.drain()
    app = DetailApp(world.backend("bob", "supervisor"), item.id)
    assert snap_compare(app, terminal_size=SIZE, run_before=_open("v", then=ReverseDialog))


def test_snapshot_typed_bulk_confirmation(world: World, snap_compare: Any) -> None:
    ids = [i.id for i in world.items("rejected_claim")[:3]]
    app = DetailApp(world.backend(), typed_above=2)

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.action_runner.start("ignore", ids)
        await dialog(pilot, NoteDialog)
        await type_into(pilot, "#note", "billed again")
        await pilot.press("enter")
        await dialog(pilot, ConfirmDialog)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_snapshot_bulk_confirmation(world: World, snap_compare: Any) -> None:
    """At or below the typed threshold a bulk action is a yes/no with the count and dollars."""
    ids = [i.id for i in world.items("rejected_claim")[:3]]
    app = DetailApp(world.backend(), typed_above=5)

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.action_runner.start("ignore", ids)
        await dialog(pilot, NoteDialog)
        await type_into(pilot, "#note", "billed again")
        await pilot.press("enter")
        await dialog(pilot, ConfirmDialog)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_a_long_segment_folds_beside_its_number_in_a_narrow_pane() -> None:
    """As one text, a segment without spaces wrapped whole onto the line under its number."""
    from types import SimpleNamespace

    from rich.console import Console

    from claimsync_console.console.screens.detail import _segments
    from claimsync_console.engine.console_detail import SegmentLine

    long = "CLP*" + "*".join(f"F{n:02d}" for n in range(20))
    view = SimpleNamespace(segments=[SegmentLine(72, "CLP", long, in_loop=True)],
                           segments_truncated=False)  # fmt: skip
    console = Console(width=40, record=True, color_system=None)
    console.print(_segments(view))
    lines = console.export_text().splitlines()
    first = next(n for n, line in enumerate(lines) if line.strip().startswith("72"))
    number, start = lines[first].split()
    assert number == "72" and long.startswith(start) and len(start) > 20
    assert "".join(line[6:].strip() for line in lines[first:]) == long + "~"
