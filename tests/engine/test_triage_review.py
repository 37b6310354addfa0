"""The second review of triage (stop 8), on the sample data, on SQLite and PostgreSQL.

One amount rule everywhere (``$`` and thousands commas, never a comma for cents); a denial whose
write-off waits for a supervisor cannot be closed under the approval (and the dashboard counts
the request's money once, only while its item is open); a request beyond every tier says so;
and the queue, the item's JSON and the console's up-front checks all show the waiting request.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update

from claimsync_console.domain import dollars
from claimsync_console.engine import status
from claimsync_console.engine.console_backend import ConsoleBackend, QueueFilter
from claimsync_console.engine.console_checks import MarkedItem, action_refusal, marked_items
from claimsync_console.engine.item_detail import item_detail
from claimsync_console.engine.triage import InvalidTransitionError, UsageError
from claimsync_console.engine.triage_model import ActionResult, parse_write_off_amount
from claimsync_console.store import queries_status as qs
from claimsync_console.store.models_engine import WorkItem
from tests.engine.triage_support import (  # noqa: F401 - the fixtures are used by name
    NOW,
    D,
    Env,
    audited,
    denial_item,
    env_fixture,
    sqlite_template_fixture,
    template_fixture,
)

# --------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$5.50", "5.50"), ("5.50", "5.50"), ("$5", "5.00"), (" $7.2 ", "7.20"),
        ("1,234.50", "1234.50"), ("$1,234.50", "1234.50"), ("1,234", "1234.00"),
        ("999,999.99", "999999.99"), ("1,234,567.8", "1234567.80"), ("$12,345", "12345.00"),
        ("1000", "1000.00"), ("0.5", "0.50"), ("007", "7.00"),
    ],
)  # fmt: skip
def test_dollars_may_carry_a_dollar_sign_and_thousands_commas(text: str, expected: str) -> None:
    value = parse_write_off_amount(text)
    assert str(value) == expected


@pytest.mark.parametrize(
    "text",
    ["1,00", "12,50", "1,2345", "1,000,00", "0,100", "01,000", "1,,000", ",100", "100,",
     "$1,00", "1.000,50", "12,345,6", "1,23,456"],
)  # fmt: skip
def test_a_comma_that_is_not_a_thousands_separator_is_refused_as_such(text: str) -> None:
    """``1,00`` used to become 100 (the console stripped every comma): one dollar, European
    style, written off as a hundred."""
    with pytest.raises(UsageError) as raised:
        parse_write_off_amount(text)
    message = raised.value.message
    assert "a comma may only separate thousands (1,234.50)" in message and "\n" not in message
    assert raised.value.exit_code == 2


@pytest.mark.parametrize(
    "text",
    ["$", "$$5", "5$", "-$5", "$-5", "+$5", "$+5", "$ 5", "US$5", "$1e2", "1,000e2", "1,000.001",
     "$1,000.", "1 000", "1_000", "\u20b95", "$NaN", "$Infinity", "\uff11\uff10\uff10",
     "5.5.5", "$.50", "1,000.5.0"],
)  # fmt: skip
def test_signs_exponents_and_other_symbols_stay_refused(text: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_write_off_amount(text)
    assert "is not an amount" in raised.value.message and "\n" not in raised.value.message


def test_a_dollar_amount_is_held_to_the_open_amount_and_to_more_than_zero() -> None:
    assert parse_write_off_amount("$1,000.00", D("1000.00")) == D("1000.00")
    with pytest.raises(UsageError, match=r"cannot write off \$1,234\.50: only \$1,000\.00 is open"):
        parse_write_off_amount("$1,234.50", D("1000.00"))
    with pytest.raises(UsageError, match=r"more than \$0\.00"):
        parse_write_off_amount("$0.00")


def test_the_service_takes_the_same_spellings(env: Env) -> None:
    item = denial_item(env, over=D("150.00"), at_most=D("500.00"))
    reason = item.details["carcs"][0]
    with pytest.raises(UsageError, match="comma may only separate thousands"):
        env.service().write_off(item.id, reason=reason, note="x", amount="1,00")
    assert env.item(item.id).version == item.version
    done = env.service().write_off(item.id, reason=reason, note="x", amount="$100.00")
    assert "100.00 written off" in done.message and done.state == "open"
    assert env.item(item.id).amount == item.amount - D("100.00")


# --------------------------------------------------------------------------- a waiting request


def request(env: Env, item: WorkItem) -> ActionResult:
    asked = env.service("alice").write_off(item.id, reason=item.details["carcs"][0], note="lost")
    assert asked.action == "write_off_requested" and asked.related_item_id is not None
    return asked


def test_a_denial_whose_write_off_waits_cannot_be_ignored(env: Env) -> None:
    """The reviewer's case: ignoring the denial left its request open, and the supervisor
    could no longer approve it (its origin was closed)."""
    item = denial_item(env, over=D("500.00"), at_most=D("10000.00"))
    approval = request(env, item).related_item_id
    audits = len(env.audit())
    said = (
        f"work item {item.id} has a write-off waiting for approval (work item {approval}):"
        " approve or ignore that first"
    )
    with pytest.raises(InvalidTransitionError) as raised:
        env.service("carol").ignore(item.id, note="duplicate")
    assert (raised.value.message, raised.value.exit_code) == (said, 1)
    bulk = env.service("carol").bulk("ignore", [item.id], note="duplicate")
    assert [(o.ok, o.error) for o in bulk.outcomes] == [(False, said)]  # type: ignore[union-attr]
    with pytest.raises(InvalidTransitionError, match="approve or ignore that first"):
        env.service("carol").write_off(item.id, reason="CO-45", note="again")
    assert env.item(item.id).state == "open" and len(env.audit()) == audits

    done = env.service("bob", "supervisor").approve(approval, note="ok")  # type: ignore[arg-type]
    assert done.related_item_id == item.id and env.item(item.id).state == "written_off"


def test_ignoring_the_request_frees_the_denial(env: Env) -> None:
    item = denial_item(env, over=D("500.00"), at_most=D("10000.00"))
    approval = request(env, item).related_item_id
    assert approval is not None
    env.service("bob", "supervisor").ignore(approval, note="appeal it instead")
    done = env.service("carol").ignore(item.id, note="the payer reversed it")
    assert done.state == "ignored"
    audited(env, done)


def in_exception(env: Env) -> tuple[int, Decimal]:
    with env.sessions() as session:
        board = status.dashboard(session, now=NOW)
    (stage,) = [s for s in board.stages if s.stage == "in_exception"]
    return stage.count, stage.amount


def requested_dollars(env: Env) -> Decimal:
    with env.sessions() as session:
        return qs.open_write_off_requests(session)


def test_a_request_is_subtracted_only_while_its_item_is_open(env: Env) -> None:
    """A request's money is its item's money while the item is open (counted once); an item
    closed under its request (before closing it was refused) leaves the request holding it."""
    count, held = in_exception(env)
    assert requested_dollars(env) == 0
    item = denial_item(env, over=D("500.00"), at_most=D("10000.00"))
    approval = env.item(request(env, item).related_item_id)  # type: ignore[arg-type]
    assert requested_dollars(env) == approval.amount == item.amount
    assert in_exception(env) == (count + 1, held)  # one more item, not more dollars
    with env.sessions() as session, session.begin():  # as an ignore did before the fix
        session.execute(update(WorkItem).where(WorkItem.id == item.id).values(state="ignored"))
    assert requested_dollars(env) == 0
    assert in_exception(env) == (count, held - item.amount + approval.amount)


# --------------------------------------------------------------------------- beyond every tier


def test_a_request_beyond_every_tier_says_so_and_so_does_its_approval(env: Env) -> None:
    """Sample rules: write-offs up to 500.00 for an analyst, 10,000.00 for a supervisor."""
    item = denial_item(env, over=D("10000.00"))
    asked = request(env, item)
    assert f"{dollars(item.amount)} is over the analyst limit of $500.00" in asked.message
    assert asked.message.endswith(
        "; beyond every approval limit (top: $10,000.00 for supervisor): flagged"
    )
    approval = env.item(asked.related_item_id)  # type: ignore[arg-type]
    assert approval.details["beyond_all_tiers"] is True
    assert (approval.details["top_limit"], approval.details["top_role"]) == (
        "10000.00", "supervisor",
    )  # fmt: skip
    done = env.service("bob", "supervisor").approve(approval.id, note="the board agreed")
    assert ", beyond every approval limit (top: $10,000.00 for supervisor): flagged" in done.message
    assert env.item(item.id).state == "written_off"


def test_a_request_within_the_tiers_is_not_flagged(env: Env) -> None:
    item = denial_item(env, over=D("500.00"), at_most=D("10000.00"))
    asked = request(env, item)
    assert "beyond" not in asked.message
    approval = env.item(asked.related_item_id)  # type: ignore[arg-type]
    assert approval.details["beyond_all_tiers"] is False and "top_limit" not in approval.details
    done = env.service("bob", "supervisor").approve(approval.id, note="ok")
    assert "beyond" not in done.message


# --------------------------------------------------------------------------- shown everywhere


def test_the_queue_row_and_the_item_carry_the_waiting_request(env: Env) -> None:
    item = denial_item(env, over=D("500.00"), at_most=D("10000.00"))
    approval = request(env, item).related_item_id
    backend = ConsoleBackend(env.sessions, env.rules, operator="alice", role="analyst",
                             clock=env.clock)  # fmt: skip
    page = backend.queue_page("denial", limit=500)
    waiting = {r.id: r.pending_approval for r in page.rows if r.pending_approval is not None}
    assert waiting == {item.id: approval}
    by_text = backend.queue_page("denial", QueueFilter.parse(item.patient_control_number))
    assert [(r.id, r.pending_approval) for r in by_text.rows] == [(item.id, approval)]
    for sort in ("amount", "payer", "claim", "error"):
        rows = backend.queue_page("denial", sort=sort, limit=500).rows
        assert {r.id: r.pending_approval for r in rows}[item.id] == approval
    with env.sessions() as session:
        assert item_detail(session, item.id, now=NOW)["item"]["pending_approval"] == approval
        other = denial_item(env, at_most=D("500.00"))
        assert item_detail(session, other.id, now=NOW)["item"]["pending_approval"] is None

    env.service("bob", "supervisor").ignore(approval, note="no")  # type: ignore[arg-type]
    rows = backend.queue_page("denial", QueueFilter.parse(item.patient_control_number)).rows
    assert [(r.id, r.pending_approval) for r in rows] == [(item.id, None)]


def test_the_console_refuses_write_off_and_ignore_before_any_dialog(env: Env) -> None:
    item = denial_item(env, over=D("500.00"), at_most=D("10000.00"))
    other = denial_item(env, at_most=D("500.00"))
    approval = request(env, item).related_item_id
    marked = marked_items(env.sessions, [item.id, other.id])
    assert [m.pending_approval for m in marked] == [approval, None]
    assert action_refusal("write_off", marked[:1]) == (
        f"Cannot write off: work item {item.id} has a write-off waiting for approval"
        f" (work item {approval}): approve or ignore that first."
    )
    assert action_refusal("ignore", marked) == (
        f"Cannot ignore the 2 marked items: 1 has a write-off waiting for approval"
        f" ({item.id} → approval {approval}); approve or ignore that first."
        " Unmark those and try again."
    )
    with env.sessions() as session:
        shown = item_detail(session, item.id, now=NOW)["item"]
    assert MarkedItem.of(shown).pending_approval == approval
    assert action_refusal("claim", marked) is None  # leasing it is fine


# --------------------------------------------------------------------------- wording


def test_refusals_name_queues_not_kinds() -> None:
    unmatched = [MarkedItem(41, "unmatched_remittance", "open"),
                 MarkedItem(42, "unmatched_remittance", "open")]  # fmt: skip
    assert action_refusal("write_off", unmatched) == (
        "Cannot write off the 2 marked items: 2 are Unmatched remittances (41, 42); write-off"
        " applies to Denials and Rejected claims."
    )
    assert action_refusal("remap", unmatched) == (
        "Cannot remap the 2 marked items: 2 are Unmatched remittances (41, 42); a remap of"
        " several items applies to Mapping errors only (it reprocesses them). A remap to a"
        " claim takes one item at a time."
    )
    assert action_refusal("remap", [MarkedItem(7, "denial", "open")]) == (
        "Cannot remap: work item 7 is a Denial; remap applies to Unmatched remittances and"
        " Mapping errors."
    )
    assert action_refusal("approve", unmatched[:1]) == (
        "Cannot approve: work item 41 is an Unmatched remittance; approve applies to Approvals."
    )
    mixed = [MarkedItem(7, "denial", "open"), MarkedItem(58, "approval", "open"),
             MarkedItem(9, "denial", "written_off"), MarkedItem(99, "", "missing")]  # fmt: skip
    said: Any = action_refusal("write_off", mixed)
    assert said == (
        "Cannot write off the 4 marked items: 1 is an Approval (58); 1 is written_off (9);"
        " 1 is gone (99); write-off applies to Denials and Rejected claims."
        " Unmark those and try again."
    )
    for kind in ("unmatched_remittance", "rejected_claim", "mapping_error", "dead_letter"):
        assert kind not in (action_refusal("approve", [MarkedItem(1, kind, "open")]) or "")
