"""Triage safety (stop 8), on the sample data, on SQLite and PostgreSQL: partial write-offs leave
the rest of the item open (directly and through an approval), write-off amounts are plain
dollars and cents, and a remap to a claim that looks wrong for the payment needs ``force``.

The world is ``tests.engine.triage_support``'s: a processed sample set copied per test, and a
real ledger the actions' postings are drained into.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from claimsync_console.domain import dollars
from claimsync_console.engine.reconcile import grand_total, reconcile
from claimsync_console.engine.triage import (
    PermissionDeniedError,
    RemapNeedsForce,
    UsageError,
)
from claimsync_console.engine.triage_model import parse_write_off_amount
from claimsync_console.engine.workitems import normalise_payer_id
from claimsync_console.store.models import ClaimPaymentRow, ClaimRow, Remittance
from claimsync_console.store.models_engine import OutboxEntry, PaymentMatch, WorkItem
from claimsync_console.store.models_triage import TriageAction
from tests.engine.triage_support import (  # noqa: F401 - the fixtures are used by name
    D,
    Env,
    audited,
    denial_item,
    env_fixture,
    sqlite_template_fixture,
    template_fixture,
)

WRITE_OFF_ACCOUNT = "4150"  # CO-197, CO-29, CO-50 in the sample rules


def receivable(payer_id: str) -> str:
    return {"SMPMB": "1210", "SMPMD": "1220"}.get(payer_id, "1230")


def action(env: Env, action_id: int | None) -> TriageAction:
    with env.sessions() as session:
        row = session.get(TriageAction, action_id)
        assert row is not None
        return row


def books(env: Env, trace: str) -> Any:
    """The item's check and the grand total, as reconciliation reports them."""
    with env.sessions() as session:
        checks = reconcile(session)
    mine = [c for c in checks if c.trace == trace]
    return mine, grand_total(checks)


# --------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", "100.00"),
        ("100.5", "100.50"),
        ("100.05", "100.05"),
        (" 7.25 ", "7.25"),
        ("0.01", "0.01"),
        (D("1E+2"), "100.00"),  # a Decimal is a value: its plain notation is 100
        (D("12.3"), "12.30"),
    ],
)
def test_a_write_off_amount_is_plain_dollars_and_cents(text: Any, expected: str) -> None:
    value = parse_write_off_amount(text)
    assert str(value) == expected and value == D(expected)


@pytest.mark.parametrize(
    "text",
    [
        "1e2", "1E+2", "1E2", "-5", "+5", "1.001", "100.000", "NaN", "nan", "Infinity", "inf",
        "-Infinity", "", "  ", "1,00", "1_000", ".5", "5.", "0x10", "١٢٣", "12 34",
        D("NaN"), D("Infinity"), D("-1"), D("1.001"), 1.5, 100,
    ],
)  # fmt: skip
def test_anything_else_is_refused_in_one_line(text: Any) -> None:
    with pytest.raises(UsageError) as raised:
        parse_write_off_amount(text)
    assert raised.value.exit_code == 2 and "\n" not in raised.value.message


def test_zero_and_more_than_is_open_are_refused() -> None:
    for text in ("0", "0.00", "00"):
        with pytest.raises(UsageError, match=r"more than \$0\.00"):
            parse_write_off_amount(text)
    assert parse_write_off_amount("322.40", D("322.40")) == D("322.40")
    with pytest.raises(UsageError, match=r"cannot write off \$322\.41: only \$322\.40 is open"):
        parse_write_off_amount("322.41", D("322.40"))


def test_the_service_holds_write_off_amounts_to_the_same_rule(env: Env) -> None:
    item = denial_item(env, over=D("150.00"), at_most=D("500.00"))
    reason, audits = item.details["carcs"][0], len(env.audit())
    for bad in ("1e2", "1E+2", "-5", "NaN", "Infinity", "1.001", str(item.amount + D("0.01"))):
        with pytest.raises(UsageError):
            env.service().write_off(item.id, reason=reason, note="x", amount=bad)
    unchanged = env.item(item.id)
    assert (unchanged.version, unchanged.amount) == (item.version, item.amount)
    assert len(env.audit()) == audits
    done = env.service().write_off(item.id, reason=reason, note="x", amount=D("1E+2"))
    assert "100.00 written off" in done.message and "E+" not in done.message
    assert action(env, done.action_id).payload["amount"] == "100.00"
    assert str(env.outbox(done.outbox_id).amount) == "100.00"


# --------------------------------------------------------------------------- partial write-offs


def test_a_partial_write_off_leaves_the_rest_open_and_the_books_right(env: Env) -> None:
    """The reviewer's case: 100.00 of a 322.40 denial wrote the whole item off."""
    item = denial_item(env, over=D("150.00"), at_most=D("500.00"))
    reason, rest = item.details["carcs"][0], item.amount - D("100.00")
    ledger = (
        env.ledger.account_balance(WRITE_OFF_ACCOUNT),
        env.ledger.account_balance(receivable(item.payer_id)),
    )
    checks, total = books(env, item.trace_number)

    done = env.service().write_off(item.id, reason=reason, note="part of it",
                                   amount="100", expected_version=item.version)  # fmt: skip
    assert (done.action, done.state, done.version) == ("write_off", "open", item.version + 1)
    assert (
        f"$100.00 written off as {reason}" in done.message
        and f"{dollars(rest)} stays open" in done.message
    )
    left = env.item(item.id)
    assert (left.state, left.amount, left.outbox_id) == ("open", rest, None)
    assert item.id in [i.id for i in env.items("denial")]  # still in the denial queue
    (taken,) = left.details["write_offs"]
    assert (taken["amount"], taken["remainder"], taken["action_id"]) == (
        "100.00", str(rest), done.action_id,
    )  # fmt: skip
    row = audited(env, done)
    assert row.before is not None and row.before["amount"] == str(item.amount)
    assert row.after is not None and row.after["amount"] == str(rest)
    assert (row.after["write_off_amount"], row.after["remainder"]) == ("100.00", str(rest))
    assert action(env, done.action_id).payload["remainder"] == str(rest)
    queued = env.outbox(done.outbox_id)
    assert (queued.kind, queued.amount, queued.cash_amount) == ("write_off", D("100.00"), 0)
    assert env.drain().posted == 1
    assert env.ledger.account_balance(WRITE_OFF_ACCOUNT) == ledger[0] + D("100.00")
    assert env.ledger.account_balance(receivable(item.payer_id)) == ledger[1] - D("100.00")
    assert books(env, item.trace_number) == (checks, total)  # a write-off moves no cash

    closed = env.service().write_off(item.id, reason=reason, note="the rest")
    assert (closed.state, env.item(item.id).amount) == ("written_off", rest)
    assert audited(env, closed).after["remainder"] == "0.00"  # type: ignore[index]
    assert env.drain().posted == 1
    assert env.ledger.account_balance(WRITE_OFF_ACCOUNT) == ledger[0] + item.amount
    assert env.ledger.account_balance(receivable(item.payer_id)) == ledger[1] - item.amount
    assert books(env, item.trace_number) == (checks, total)


def test_reversing_partial_write_offs_puts_each_amount_back(env: Env) -> None:
    item = denial_item(env, over=D("150.00"), at_most=D("500.00"))
    reason, trial = item.details["carcs"][0], env.ledger.trial_balance()
    first = env.service().write_off(item.id, reason=reason, note="part", amount="100.00")
    second = env.service().write_off(item.id, reason=reason, note="rest")
    assert second.state == "written_off"
    assert env.drain().posted == 2
    supervisor = env.service("bob", "supervisor")
    assert first.action_id is not None and second.action_id is not None

    undo_first = supervisor.reverse(first.action_id, note="the 100 was wrong")
    reopened = env.item(item.id)  # the second write-off still stands: only the 100 is open
    assert (undo_first.state, reopened.amount) == ("open", D("100.00"))
    assert "is open again with $100.00 open" in undo_first.message
    undo_second = supervisor.reverse(second.action_id, note="all of it was wrong")
    assert "stays open" in undo_second.message
    assert (env.item(item.id).state, env.item(item.id).amount) == ("open", item.amount)
    assert [w.get("reversed_by") for w in env.item(item.id).details["write_offs"]] == [
        undo_first.action_id, undo_second.action_id,
    ]  # fmt: skip
    assert env.drain().posted == 2
    assert env.ledger.trial_balance() == trial  # back to the cent


def test_partial_write_offs_add_up_towards_the_approval_tier(env: Env) -> None:
    """Two pieces under the analyst's 500.00 may not write off more than 500.00 unapproved;
    the approved piece leaves the rest of the item open, as a direct write-off does."""
    item = denial_item(env, over=D("700.00"), at_most=D("10000.00"))
    reason, balance = item.details["carcs"][0], env.ledger.account_balance(WRITE_OFF_ACCOUNT)
    first = env.service("alice").write_off(item.id, reason=reason, note="a", amount="400")
    assert first.action == "write_off" and first.outbox_id is not None
    asked = env.service("alice").write_off(item.id, reason=reason, note="b", amount="200")
    assert (asked.action, asked.state, asked.outbox_id) == ("write_off_requested", "open", None)
    assert "$600.00 is over the analyst limit of $500.00" in asked.message
    assert "($200.00 now, $400.00 written off before)" in asked.message
    assert audited(env, asked).after["write_off_amount"] == "200.00"  # type: ignore[index]
    approval = env.item(asked.related_item_id)  # type: ignore[arg-type]
    assert approval.amount == D("600.00")  # the approver vouches for both pieces
    with pytest.raises(PermissionDeniedError, match=r"up to \$500\.00"):
        env.service("carol", "analyst").approve(approval.id)

    done = env.service("bob", "supervisor").approve(approval.id, note="ok")
    rest = item.amount - D("600.00")
    assert f"$200.00 of work item {item.id} written off, {dollars(rest)} stays open" in done.message
    left = env.item(item.id)
    assert (left.state, left.amount) == ("open", rest)
    assert "pending_approval" not in left.details
    assert [w["amount"] for w in left.details["write_offs"]] == ["400.00", "200.00"]
    origin_row = env.audit()[-1]
    assert (origin_row.action, origin_row.work_item_id) == ("write_off", item.id)
    assert origin_row.after is not None
    assert (origin_row.after["write_off_amount"], origin_row.after["remainder"]) == (
        "200.00", str(rest),
    )  # fmt: skip
    assert env.outbox(done.outbox_id).amount == D("200.00")
    assert env.drain().posted == 2
    assert env.ledger.account_balance(WRITE_OFF_ACCOUNT) == balance + D("600.00")

    assert done.action_id is not None
    back = env.service("dana", "supervisor").reverse(done.action_id, note="not approved after all")
    assert (back.item_id, env.item(item.id).amount) == (item.id, rest + D("200.00"))


# --------------------------------------------------------------------------- remap safety


def wrong_claim(env: Env, item: WorkItem) -> tuple[int, int, Decimal]:
    """A claim of another payer, already paid, billed at another amount than the item's
    payment's charge: (claim id, its active payment's id, the payment's charge)."""
    with env.sessions() as session:
        payment = session.get(ClaimPaymentRow, item.claim_payment_id)
        assert payment is not None
        remit = session.get(Remittance, payment.remittance_id)
        assert remit is not None
        paid_by = normalise_payer_id(remit.payer_identifier)
        for match in session.scalars(
            select(PaymentMatch).where(PaymentMatch.status == "matched").order_by(PaymentMatch.id)
        ):
            claim = session.get(ClaimRow, match.claim_id)
            assert claim is not None
            if normalise_payer_id(claim.payer_identifier) != paid_by and abs(
                claim.billed_amount - payment.charge
            ) > D("0.01"):
                return claim.id, match.claim_payment_id, payment.charge
    raise AssertionError("no such claim in the sample")


def free_claims(env: Env, item: WorkItem) -> list[int]:
    """Claims of the item's payer with no payment at all."""
    with env.sessions() as session:
        paid = select(PaymentMatch.claim_id).where(PaymentMatch.claim_id.is_not(None))
        query = select(ClaimRow.id).where(ClaimRow.id.not_in(paid)).order_by(ClaimRow.id)
        return [
            claim_id
            for claim_id in session.scalars(query)
            if normalise_payer_id(session.get(ClaimRow, claim_id).payer_identifier)  # type: ignore[union-attr]
            == normalise_payer_id(item.payer_id)
        ]


def set_billed(env: Env, claim_id: int, amount: Decimal) -> None:
    with env.sessions() as session, session.begin():
        session.execute(
            update(ClaimRow).where(ClaimRow.id == claim_id).values(billed_amount=amount)
        )


def test_a_remap_to_a_wrong_claim_is_refused_naming_every_reason(env: Env) -> None:
    item = env.items("unmatched_remittance")[0]
    claim_id, paid_id, charge = wrong_claim(env, item)
    counts = len(env.audit()), env.count(OutboxEntry), env.count(TriageAction)
    with pytest.raises(RemapNeedsForce) as raised:
        env.service().remap(item.id, claim_id=claim_id, note="looks like it")
    refusal = raised.value
    assert isinstance(refusal, UsageError) and refusal.exit_code == 2
    assert (refusal.item_id, refusal.claim_id, len(refusal.problems)) == (item.id, claim_id, 3)
    payer, paid, billed = refusal.problems
    with env.sessions() as session:
        claim = session.get(ClaimRow, claim_id)
        assert claim is not None
        claim_payer, claim_billed = normalise_payer_id(claim.payer_identifier), claim.billed_amount
    assert payer.startswith(f"payer differs: the payment is from {item.payer_id} (")
    assert f"claim {claim_id} is billed to {claim_payer} (" in payer
    assert paid.startswith(
        f"claim {claim_id} already has an active payment: claim payment {paid_id}"
    )
    charged = (
        f"the payment's charge is {dollars(charge)}, claim {claim_id} billed"
        f" {dollars(claim_billed)}"
    )
    assert billed == f"charge differs: {charged}"
    assert "\n" not in refusal.message and "--force" in refusal.message
    assert env.service().remap_warnings(item.id, claim_id) == refusal.problems
    unchanged = env.item(item.id)  # refused: nothing at all happened
    assert (unchanged.state, unchanged.version) == ("open", item.version)
    assert (len(env.audit()), env.count(OutboxEntry), env.count(TriageAction)) == counts
    with env.sessions() as session:
        match = session.scalars(
            select(PaymentMatch).where(PaymentMatch.claim_payment_id == item.claim_payment_id)
        ).one()
        assert (match.status, match.claim_id) == ("unmatched", None)

    done = env.service().remap(item.id, claim_id=claim_id, note="the payer says so", force=True)
    assert done.state == "resolved" and "forced over 3 warning(s)" in done.message
    assert action(env, done.action_id).payload["overridden_warnings"] == list(refusal.problems)
    row = audited(env, done)
    assert (row.reason, row.note, row.target) == (
        "forced",
        "the payer says so",
        f"claim:{claim_id}",
    )
    assert row.after is not None and row.after["overridden_warnings"] == list(refusal.problems)


def test_a_remap_that_looks_right_needs_no_force(env: Env) -> None:
    item = next(i for i in env.items("unmatched_remittance") if len(free_claims(env, i)) >= 2)
    exact, off = free_claims(env, item)[:2]
    with env.sessions() as session:
        charge = session.scalar(
            select(ClaimPaymentRow.charge).where(ClaimPaymentRow.id == item.claim_payment_id)
        )
    assert charge is not None
    set_billed(env, exact, charge + D("0.01"))  # a cent apart is the same charge
    set_billed(env, off, charge + D("0.02"))
    charged = (
        f"the payment's charge is {dollars(charge)}, claim {off} billed"
        f" {dollars(charge + D('0.02'))}"
    )
    assert env.service().remap_warnings(item.id, off) == (f"charge differs: {charged}",)
    assert env.service().remap_warnings(item.id, exact) == ()
    done = env.service().remap(item.id, claim_id=exact, note="clean")
    assert done.state == "resolved" and "forced" not in done.message
    assert "overridden_warnings" not in action(env, done.action_id).payload
    row = audited(env, done)
    assert row.reason == "" and row.after is not None and "overridden_warnings" not in row.after
    # the claim now has this payment: another payment remapped to it is warned of it
    other = next(i for i in env.items("unmatched_remittance") if i.id != item.id)
    warned = env.service().remap_warnings(other.id, exact)
    assert any(f"claim payment {item.claim_payment_id}" in w for w in warned)
    assert any(f"work item {item.id}" in w for w in warned)


def test_a_reversed_payment_is_not_active_and_a_reversal_expects_one(env: Env) -> None:
    item = env.items("unmatched_remittance")[0]
    with env.sessions() as session:
        reversed_claim = session.scalar(
            select(PaymentMatch.claim_id).where(PaymentMatch.status == "reversal_linked").limit(1)
        )
        paid_claim = session.scalar(
            select(PaymentMatch.claim_id)
            .where(PaymentMatch.status == "matched")
            .group_by(PaymentMatch.claim_id)
            .having(func.count() == 1)
            .limit(1)
        )
    assert reversed_claim is not None and paid_claim is not None
    service = env.service()
    assert not any("active payment" in w for w in service.remap_warnings(item.id, reversed_claim))
    assert any("active payment" in w for w in service.remap_warnings(item.id, paid_claim))
    with env.sessions() as session, session.begin():  # the same payment, as a payer's reversal
        session.execute(
            update(ClaimPaymentRow)
            .where(ClaimPaymentRow.id == item.claim_payment_id)
            .values(status_code="22")
        )
    assert not any("active payment" in w for w in service.remap_warnings(item.id, paid_claim))


def test_force_is_for_a_remap_to_a_claim(env: Env) -> None:
    item = env.items("mapping_error")[0]
    with pytest.raises(UsageError, match="force applies to a remap to a claim"):
        env.service().remap(item.id, reprocess=True, force=True)
