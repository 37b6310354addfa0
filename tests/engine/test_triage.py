"""Triage actions that move money, end to end on the sample data, on SQLite and PostgreSQL:
remap, approve, write off and reverse. The world they run in (a processed sample set, copied
per test, and a ledger per test) is ``tests.engine.triage_support``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from claimsync_console.engine.outbox import entry_from_json
from claimsync_console.engine.triage import (
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    UnresolvedError,
    UsageError,
)
from claimsync_console.store.models_engine import OutboxEntry, PaymentMatch
from claimsync_console.store.models_triage import TriageAction
from tests.engine.triage_support import (  # noqa: F401 - the fixtures are used by name
    D,
    Env,
    audited,
    denial_item,
    env_fixture,
    fixed_rules,
    posted_entry,
    sqlite_template_fixture,
    template_fixture,
)

# --------------------------------------------------------------------------- remap


def test_remap_matches_by_hand_and_the_ledger_sees_the_payment(env: Env) -> None:
    item = env.items("unmatched_remittance")[0]
    claim_id = item.details["candidates"][0]["claim_id"]
    cash_before = env.ledger.account_balance("1010")
    # every candidate in the sample already has its own payment: the remap must be forced
    done = env.service().remap(item.id, expected_version=item.version, claim_id=claim_id,
                               note="same patient, typo in CLP01", force=True)  # fmt: skip
    assert (done.state, done.version, done.action) == ("resolved", item.version + 1, "remap")
    assert done.outbox_id is not None and "matched to claim" in done.message
    row = audited(env, done)
    assert (row.operator, row.role, row.target) == ("alice", "analyst", f"claim:{claim_id}")
    assert row.before is not None and row.before["state"] == "open"
    assert row.note == "same patient, typo in CLP01"
    with env.sessions() as session:
        match = session.scalars(
            select(PaymentMatch).where(PaymentMatch.claim_payment_id == item.claim_payment_id)
        ).one()
        assert (match.status, match.method, match.claim_id) == ("matched", "manual", claim_id)
        action = session.get(TriageAction, done.action_id)
        assert action is not None and action.outbox_id == done.outbox_id
    queued = env.outbox(done.outbox_id)
    assert queued.kind == "payment" and queued.claim_payment_id == item.claim_payment_id
    assert queued.cash_amount == item.amount and queued.status == "pending"
    assert env.drain().posted == 1
    posted_entry(env, done.outbox_id)
    assert env.ledger.account_balance("1010") == cash_before + item.amount
    assert env.item(item.id).claim_id == claim_id


def test_remap_needs_a_claim_that_exists(env: Env) -> None:
    item = env.items("unmatched_remittance")[0]
    service = env.service()
    with pytest.raises(UsageError):
        service.remap(item.id, expected_version=item.version)
    with pytest.raises(NotFoundError, match="no claim 999999") as raised:
        service.remap(item.id, expected_version=item.version, claim_id=999_999)
    assert raised.value.exit_code == 2
    with pytest.raises(NotFoundError, match="no work item 999999"):
        service.remap(999_999, claim_id=1)
    assert env.item(item.id).version == item.version


def test_reprocess_names_what_is_still_missing_then_posts_after_the_fix(
    env: Env, tmp_path: Path
) -> None:
    item = next(i for i in env.items("mapping_error") if "CO-B7" in i.error)
    audits = len(env.audit())
    with pytest.raises(UnresolvedError, match="still missing: carc:CO-B7") as raised:
        env.service().remap(item.id, expected_version=item.version, reprocess=True)
    assert raised.value.exit_code == 1
    unchanged = env.item(item.id)  # the failed attempt rolled back entirely
    assert (unchanged.state, unchanged.version) == ("open", item.version)
    assert len(env.audit()) == audits

    fixed = env.service(rules=fixed_rules(tmp_path))
    done = fixed.remap(item.id, expected_version=item.version, reprocess=True, note="B7 mapped")
    assert done.state == "resolved" and done.outbox_id is not None
    assert audited(env, done).note == "B7 mapped"
    assert env.outbox(done.outbox_id).cash_amount == D(item.details["cash_amount"])
    assert env.drain().posted == 1
    lines = posted_entry(env, done.outbox_id).lines
    assert any(line.account == "4100" and line.memo == "CO-B7" for line in lines)


# --------------------------------------------------------------------------- approve


def test_an_engine_approval_needs_a_supervisor_and_then_posts(env: Env) -> None:
    item = next(i for i in env.items("approval") if i.details["reason_code"] == "CO-45")
    with pytest.raises(PermissionDeniedError, match="role analyst is not in the approval tiers"):
        env.service("carol", "analyst").approve(item.id, expected_version=item.version)
    done = env.service("bob", "supervisor").approve(
        item.id, expected_version=item.version, note="checked the fee schedule"
    )
    assert done.state == "resolved" and done.outbox_id is not None
    row = audited(env, done)
    assert (row.operator, row.role, row.reason) == ("bob", "supervisor", "CO-45")
    queued = env.outbox(done.outbox_id)
    assert queued.idempotency_key == item.source_key
    assert entry_from_json(queued.entry) == entry_from_json(item.details["posting"]["entry"])
    assert env.drain().posted == 1
    posted_entry(env, done.outbox_id)


# --------------------------------------------------------------------------- write off


def test_a_write_off_within_the_analysts_limit_posts(env: Env) -> None:
    item = denial_item(env, at_most=D("500.00"))
    reason = item.details["carcs"][0]
    receivable = {"SMPMB": "1210", "SMPMD": "1220"}.get(item.payer_id, "1230")
    before = env.ledger.account_balance("4150"), env.ledger.account_balance(receivable)
    with pytest.raises(UsageError, match="needs a note"):
        env.service().write_off(item.id, reason=reason, note="  ")
    with pytest.raises(UsageError, match="unknown write-off reason 'CO-999'"):
        env.service().write_off(item.id, reason="CO-999", note="x")
    with pytest.raises(UsageError, match="cannot write off"):
        env.service().write_off(item.id, reason=reason, note="x", amount=item.amount + 1)
    done = env.service().write_off(item.id, reason=reason, note="not worth appealing",
                                   expected_version=item.version)  # fmt: skip
    assert (done.state, done.action) == ("written_off", "write_off")
    row = audited(env, done)
    assert (row.reason, row.note) == (reason, "not worth appealing")
    queued = env.outbox(done.outbox_id)
    assert (queued.kind, queued.amount, queued.cash_amount) == ("write_off", item.amount, 0)
    assert env.drain().posted == 1
    posted_entry(env, done.outbox_id)
    assert env.ledger.account_balance("4150") == before[0] + item.amount
    assert env.ledger.account_balance(receivable) == before[1] - item.amount


def test_over_the_limit_a_write_off_waits_for_a_supervisor_who_is_not_the_requester(
    env: Env,
) -> None:
    item = denial_item(env, over=D("500.00"), at_most=D("10000.00"))
    reason = item.details["carcs"][0]
    requested = env.service("alice", "analyst").write_off(
        item.id, reason=reason, note="timely filing lost", expected_version=item.version
    )
    assert requested.action == "write_off_requested" and requested.outbox_id is None
    assert requested.state == "open" and requested.related_item_id is not None
    assert "waits for a supervisor" in requested.message
    audited(env, requested)
    approval = env.item(requested.related_item_id)
    assert (approval.kind, approval.requested_by, approval.amount) == (
        "approval", "alice", item.amount
    )  # fmt: skip
    outbox = env.count(OutboxEntry)
    with pytest.raises(InvalidTransitionError, match="waiting for approval"):
        env.service("alice").write_off(item.id, reason=reason, note="again")
    with pytest.raises(PermissionDeniedError, match="you requested") as raised:
        env.service("alice", "supervisor").approve(approval.id)
    assert raised.value.exit_code == 4
    with pytest.raises(PermissionDeniedError, match=r"up to \$500\.00"):
        env.service("carol", "analyst").approve(approval.id)
    assert env.count(OutboxEntry) == outbox  # the refusals queued nothing
    done = env.service("bob", "supervisor").approve(approval.id, note="ok")
    assert done.state == "resolved" and done.related_item_id == item.id
    written = env.item(item.id)
    assert written.state == "written_off" and written.outbox_id == done.outbox_id
    assert [r.action for r in env.audit()[-2:]] == ["approve", "write_off"]
    assert env.audit()[-1].note == "timely filing lost"
    balance = env.ledger.account_balance("4150")
    assert env.drain().posted == 1
    assert env.ledger.account_balance("4150") == balance + item.amount


# --------------------------------------------------------------------------- reverse


def test_reverse_posts_the_compensating_entry_and_reopens_the_item(env: Env) -> None:
    item = denial_item(env, at_most=D("500.00"))
    reason = item.details["carcs"][0]
    trial = env.ledger.trial_balance()
    done = env.service().write_off(item.id, reason=reason, note="small")
    assert done.action_id is not None
    with pytest.raises(InvalidTransitionError, match="is pending, not in the ledger"):
        env.service("bob", "supervisor").reverse(done.action_id, note="wrong claim")
    env.drain()
    assert env.ledger.trial_balance() != trial
    with pytest.raises(UsageError):
        env.service("bob", "supervisor").reverse(done.action_id, note="")
    undone = env.service("bob", "supervisor").reverse(done.action_id, note="wrong claim")
    assert (undone.item_id, undone.state, undone.action) == (item.id, "open", "reverse")
    row = audited(env, undone)
    assert (row.target, row.reason) == (f"action:{done.action_id}", "write_off")
    compensating = env.outbox(undone.outbox_id)
    assert compensating.kind == "operator" and compensating.cash_amount == 0
    original = entry_from_json(env.outbox(done.outbox_id).entry)
    mirror = entry_from_json(compensating.entry)
    assert [(ln.account, ln.debit, ln.credit) for ln in mirror.lines] == [
        (ln.account, ln.credit, ln.debit) for ln in original.lines
    ]
    assert env.drain().posted == 1
    assert env.ledger.trial_balance() == trial  # the ledger balances back, to the cent
    with pytest.raises(InvalidTransitionError, match="already reversed"):
        env.service("bob", "supervisor").reverse(done.action_id, note="again")
    again = env.service().write_off(item.id, reason=reason, note="right claim this time")
    assert env.outbox(again.outbox_id).idempotency_key != env.outbox(done.outbox_id).idempotency_key
    assert env.drain().posted == 1


def test_a_reversed_engine_approval_can_be_approved_again_under_a_new_key(env: Env) -> None:
    item = env.items("approval")[0]
    first = env.service("bob", "supervisor").approve(item.id)
    env.drain()
    trial = env.ledger.trial_balance()
    assert first.action_id is not None
    back = env.service("dana", "supervisor").reverse(first.action_id, note="wrong tier")
    assert (back.item_id, back.state) == (item.id, "open")
    env.drain()
    second = env.service("dana", "supervisor").approve(item.id)
    assert env.outbox(second.outbox_id).idempotency_key != item.source_key
    assert env.drain().posted == 1
    assert env.ledger.trial_balance() == trial  # posted, reversed, posted again: once


def test_only_operator_postings_are_reversed(env: Env) -> None:
    unmatched = env.items("unmatched_remittance")[0]
    remapped = env.service().remap(unmatched.id, claim_id=1, force=True)
    ignored = env.service().ignore(env.items("rejected_claim")[0].id, note="billed again")
    env.drain()
    for action_id in (remapped.action_id, ignored.action_id):
        assert action_id is not None
        with pytest.raises(InvalidTransitionError, match="only write-offs and approvals"):
            env.service().reverse(action_id, note="undo")
    with pytest.raises(NotFoundError):
        env.service().reverse(999_999, note="undo")
