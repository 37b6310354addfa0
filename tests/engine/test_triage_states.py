"""Triage without money moving, and the service's guarantees: ignore, leases, conflicts,
invalid transitions, the audit chain, PHI reveal and atomicity. Same world as ``test_triage``
(``tests.engine.triage_support``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, update

from claimsync_console.engine.audit_export import verify
from claimsync_console.engine.status import dashboard
from claimsync_console.engine.triage import (
    ConflictError,
    InvalidTransitionError,
    UsageError,
)
from claimsync_console.store.models import ClaimRow
from claimsync_console.store.models_engine import AuditEntry, OutboxEntry
from claimsync_console.store.models_triage import TriageAction
from claimsync_console.store.queries_engine import verify_audit_chain
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

# --------------------------------------------------------------------------- ignore, leases


def test_ignore_needs_a_note_and_posts_nothing(env: Env) -> None:
    item = env.items("rejected_claim")[0]
    outbox = env.count(OutboxEntry)
    with pytest.raises(UsageError, match="ignore needs a note") as raised:
        env.service().ignore(item.id, note="")
    assert raised.value.exit_code == 2
    done = env.service().ignore(item.id, note="billed again from the other system")
    assert done.state == "ignored" and done.outbox_id is None
    assert audited(env, done).note == "billed again from the other system"
    assert env.count(OutboxEntry) == outbox


def test_a_lease_keeps_others_out_until_released_or_expired(env: Env) -> None:
    item = env.items("denial")[0]
    alice, bob = env.service("alice"), env.service("bob")
    held = alice.claim_item(item.id, expected_version=item.version)
    assert held.state == "in_progress" and held.action_id is None
    assert env.item(item.id).assigned_to == "alice"
    with pytest.raises(ConflictError, match="being worked by alice") as raised:
        bob.claim_item(item.id)
    assert raised.value.exit_code == 3
    with pytest.raises(ConflictError):
        bob.ignore(item.id, note="mine now")
    with pytest.raises(ConflictError, match="leased to alice"):
        bob.release_item(item.id)
    assert alice.claim_item(item.id).state == "in_progress"  # renewing one's own lease
    released = alice.release_item(item.id)
    assert released.state == "open" and env.item(item.id).assigned_to is None
    with pytest.raises(InvalidTransitionError, match="only an in_progress item"):
        alice.release_item(item.id)
    bob.claim_item(item.id)
    env.clock.now = NOW + timedelta(hours=1)  # bob's lease (30 minutes) ran out
    taken = alice.claim_item(item.id)
    assert taken.state == "in_progress" and env.item(item.id).assigned_to == "alice"
    actions = [r.action for r in env.audit()[-5:]]
    assert actions == ["claim", "claim", "release", "claim", "claim"]  # refusals audit nothing


# --------------------------------------------------------------------------- conflicts


def test_two_operators_on_the_same_item_one_wins(env: Env) -> None:
    item = denial_item(env, at_most=D("500.00"))
    alice, bob = env.service("alice"), env.service("bob")
    outbox = env.count(OutboxEntry)
    alice.ignore(item.id, note="duplicate", expected_version=item.version)
    with pytest.raises(ConflictError, match="changed since you loaded it") as raised:
        bob.write_off(item.id, reason=item.details["carcs"][0], note="x",
                      expected_version=item.version)  # fmt: skip
    assert raised.value.exit_code == 3
    assert env.count(OutboxEntry) == outbox and env.item(item.id).state == "ignored"


# --------------------------------------------------------------------------- invalid transitions


@pytest.mark.parametrize(
    ("kind", "act"),
    [
        ("denial", lambda s, i: s.ignore(i, note="x")),
        ("denial", lambda s, i: s.write_off(i, reason="CO-50", note="x")),
        ("denial", lambda s, i: s.claim_item(i)),
        ("approval", lambda s, i: s.approve(i)),
        ("unmatched_remittance", lambda s, i: s.remap(i, claim_id=1)),
        ("mapping_error", lambda s, i: s.remap(i, reprocess=True)),
        ("dead_letter", lambda s, i: s.retry_item(i)),
    ],
    ids=["ignore", "write_off", "claim", "approve", "remap", "reprocess", "retry"],
)
def test_a_closed_item_refuses_every_action(env: Env, kind: str, act: Any) -> None:
    target = env.items(kind)[-1]
    env.service().ignore(target.id, note="closing it")
    item = env.item(target.id)
    with pytest.raises(InvalidTransitionError) as raised:
        act(env.service("bob", "supervisor"), item.id)
    assert raised.value.exit_code == 1
    assert f"work item {item.id} is ignored" in raised.value.message
    assert env.item(item.id).version == item.version


@pytest.mark.parametrize(
    ("kind", "act", "expected"),
    [
        ("denial", lambda s, i: s.approve(i), "applies to approval items"),
        ("denial", lambda s, i: s.retry_item(i), "applies to dead_letter items"),
        ("denial", lambda s, i: s.remap(i, claim_id=1), "applies to unmatched_remittance"),
        ("denial", lambda s, i: s.remap(i, reprocess=True), "applies to mapping_error"),
        ("unmatched_remittance", lambda s, i: s.write_off(i, reason="CO-50", note="x"),
         "applies to denial or rejected_claim"),
        ("dead_letter", lambda s, i: s.write_off(i, reason="CO-50", note="x"),
         "applies to denial or rejected_claim"),
    ],
)  # fmt: skip
def test_an_action_on_the_wrong_kind_is_refused(
    env: Env, kind: str, act: Any, expected: str
) -> None:
    item = env.items(kind)[0]
    with pytest.raises(InvalidTransitionError, match=expected):
        act(env.service("bob", "supervisor"), item.id)
    assert env.item(item.id).version == item.version


# --------------------------------------------------------------------------- audit, PHI


def test_the_audit_chain_holds_and_a_tampered_row_is_found(env: Env) -> None:
    service = env.service("bob", "supervisor")
    results = [
        service.claim_item(env.items("denial")[0].id),
        service.ignore(env.items("rejected_claim")[0].id, note="n/a"),
        service.retry_item(env.items("dead_letter")[0].id),
    ]
    rows = env.audit()
    assert [r.action for r in rows[-3:]] == ["claim", "ignore", "retry"]
    assert {r.audit_id for r in results} == {r.id for r in rows[-3:]}
    for previous, row in itertools.pairwise(rows):
        assert row.prev_hash == previous.hash
    with env.sessions() as session:
        assert verify_audit_chain(session) is None
        assert verify(session).intact  # and every action has its audit row
    with env.sessions.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == rows[-2].id).values(note="x"))
    with env.sessions() as session:
        assert verify_audit_chain(session) == rows[-2].id


def test_reveal_phi_returns_the_identity_and_audits_the_reveal(env: Env) -> None:
    item = env.items("denial")[0]
    with env.sessions() as session:
        claim = session.get(ClaimRow, item.claim_id)
        assert claim is not None
        person = claim.patient or claim.subscriber
    with pytest.raises(UsageError, match="reveal_phi needs a reason"):
        env.service().reveal_phi(item.id, "")
    shown = env.service().reveal_phi(item.id, "patient on the phone")
    assert shown.patient_name.startswith(person["last_name"] + ", " + person["first_name"])
    assert shown.member_id == (person["member_id"] or claim.subscriber["member_id"])
    assert shown.date_of_birth == (person["date_of_birth"] or "")
    row = env.audit()[-1]
    assert (row.id, row.action, row.reason) == (
        shown.audit_id,
        "reveal_phi",
        "patient on the phone",
    )
    assert (row.work_item_id, row.operator) == (item.id, "alice")
    stored = f"{row.before}{row.after}{row.note}{row.target}"
    assert row.before is None and row.after is None
    assert person["last_name"] not in stored and shown.member_id not in stored
    with env.sessions() as session:
        assert verify_audit_chain(session) is None


# --------------------------------------------------------------------------- atomicity


def test_a_change_racing_the_action_rolls_the_whole_action_back(env: Env) -> None:
    """Someone bumps the item just before the write-off's own UPDATE (after its posting was
    queued): the action fails as a conflict and leaves no posting, action or audit row."""
    item = denial_item(env, at_most=D("500.00"))
    counts = env.count(OutboxEntry), env.count(TriageAction), env.count(AuditEntry)
    bind = env.sessions.kw["bind"]
    fired: list[str] = []

    def someone_else_first(_c: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not fired and statement.lstrip().upper().startswith("UPDATE WORK_ITEMS"):
            fired.append(statement)
            cursor.execute(f"UPDATE work_items SET version = version + 1 WHERE id = {item.id}")

    event.listen(bind, "before_cursor_execute", someone_else_first)
    try:
        with pytest.raises(ConflictError, match="changed by someone else meanwhile"):
            env.service().write_off(item.id, reason=item.details["carcs"][0], note="x",
                                    expected_version=item.version)  # fmt: skip
    finally:
        event.remove(bind, "before_cursor_execute", someone_else_first)
    assert fired
    assert (env.count(OutboxEntry), env.count(TriageAction), env.count(AuditEntry)) == counts
    assert env.item(item.id).state == "open"


def test_reversing_an_approved_write_off_reopens_thedenial_item(env: Env) -> None:
    item = denial_item(env, over=D("500.00"), at_most=D("10000.00"))
    trial = env.ledger.trial_balance()
    asked = env.service("alice").write_off(item.id, reason="CO-50", note="lost the appeal")
    approved = env.service("bob", "supervisor").approve(asked.related_item_id or 0)
    env.drain()
    assert approved.action_id is not None and env.item(item.id).state == "written_off"
    back = env.service("bob", "supervisor").reverse(approved.action_id, note="appeal reopened")
    assert (back.item_id, back.state) == (item.id, "open")
    approval = env.item(asked.related_item_id or 0)
    assert approval.state == "resolved" and approval.details["reversed_by"] == back.action_id
    assert "pending_approval" not in env.item(item.id).details
    assert env.drain().posted == 1
    assert env.ledger.trial_balance() == trial
    again = env.service("alice").write_off(item.id, reason="CO-50", note="lost it twice")
    assert again.action == "write_off_requested" and again.related_item_id != approval.id
    with env.sessions() as session:  # request, approval and reversal each left an audit row
        assert verify(session).intact


def test_a_write_off_request_is_not_counted_twice_in_exception(env: Env) -> None:
    """The request's approval item and the denial it would write off hold the same dollars;
    the dashboard's "in exception" counts both items but the money once."""
    item = denial_item(env, over=D("500.00"), at_most=D("10000.00"))
    with env.sessions() as session:
        before = {s.stage: (s.count, s.amount) for s in dashboard(session, now=env.clock()).stages}
    asked = env.service("alice").write_off(item.id, reason="CO-50", note="lost the appeal")
    assert asked.action == "write_off_requested"
    with env.sessions() as session:
        board = dashboard(session, now=env.clock())
    after = {s.stage: (s.count, s.amount) for s in board.stages}
    count, amount = before["in_exception"]
    assert after["in_exception"] == (count + 1, amount)
    (approvals,) = [t for t in board.queues if t.kind == "approval"]
    assert approvals.amount >= env.item(asked.related_item_id or 0).amount > 0


def test_a_request_after_an_earlier_piece_is_still_counted_once(env: Env) -> None:
    """The approval's amount (600.00) also counts the earlier 400.00, already written off and
    in no queue: in exception the item's own amount is what is open, so the whole approval is
    the double count, not just its new 200.00 piece."""
    item = denial_item(env, over=D("700.00"), at_most=D("10000.00"))
    reason = item.details["carcs"][0]
    env.service("alice").write_off(item.id, reason=reason, note="a", amount="400")
    with env.sessions() as session:
        before = {s.stage: (s.count, s.amount) for s in dashboard(session, now=env.clock()).stages}
    asked = env.service("alice").write_off(item.id, reason=reason, note="b", amount="200")
    assert env.item(asked.related_item_id or 0).amount == D("600.00")
    with env.sessions() as session:
        board = dashboard(session, now=env.clock())
    count, amount = before["in_exception"]
    assert {s.stage: (s.count, s.amount) for s in board.stages}["in_exception"] == (
        count + 1,
        amount,
    )
    assert board.write_off_requests == D("600.00")
