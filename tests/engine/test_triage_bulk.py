"""Bulk triage: dry-run previews against applying item by item, each with its own outcome.

Same data and isolation as ``test_triage`` (fixtures from ``triage_support``): the sample set
after one run of the engine, with the OA-23 postings dead-lettered because account 4120 was
inactive when they were drained, and active again now (the fix a retry needs).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from claimsync_console.domain import ZERO
from claimsync_console.engine.triage import (
    BulkResult,
    Preview,
    TriageLimits,
    TriageService,
    UsageError,
    WorkItemFilter,
)
from claimsync_console.store.models_engine import OutboxEntry, WorkItem
from claimsync_console.store.queries_engine import verify_audit_chain
from tests.engine.triage_support import (  # noqa: F401 - the fixtures are used by name
    DEAD_ACCOUNT,
    Env,
    env_fixture,
    fixed_rules,
    posted_entry,
    sqlite_template_fixture,
    template_fixture,
)

D = Decimal


def _total(items: list[WorkItem]) -> Decimal:
    return sum((i.amount for i in items), ZERO)


def test_a_dry_run_previews_count_and_dollars_and_changes_nothing(env: Env) -> None:
    dead = env.items("dead_letter")
    assert len(dead) == env.dead_letters > 1
    preview = env.service().retry(dry_run=True)
    assert isinstance(preview, Preview)
    assert (preview.action, preview.count, preview.total) == ("retry", len(dead), _total(dead))
    assert set(preview.ids) == {i.id for i in dead} and not preview.truncated
    assert [(i.id, i.version, i.state) for i in env.items("dead_letter")] == [
        (i.id, i.version, i.state) for i in dead
    ]
    assert {env.outbox(i.outbox_id).status for i in dead} == {"dead"}
    small = TriageService(env.sessions, env.rules, operator="alice", role="analyst",
                          limits=TriageLimits(preview_ids=3))  # fmt: skip
    capped = small.preview("retry")
    assert (capped.count, len(capped.ids), capped.truncated) == (len(dead), 3, True)
    narrow = env.service().retry(where=WorkItemFilter(min_amount=D("100.00")), dry_run=True)
    assert isinstance(narrow, Preview)
    assert narrow.total == _total([i for i in dead if i.amount >= D("100.00")])


def test_retry_applies_item_by_item_and_the_ledger_gets_every_posting(env: Env) -> None:
    dead = env.items("dead_letter")
    denial = env.items("denial")[0]
    closed = dead[0]
    env.service().ignore(closed.id, note="posted by hand in the ERP")
    ids = [i.id for i in dead] + [denial.id]
    done = env.service("bob").retry(ids)
    assert isinstance(done, BulkResult) and done.exit_code == 1
    outcomes = {o.item_id: o for o in done.outcomes}
    assert [o.item_id for o in done.outcomes] == ids  # in the order asked, none skipped
    assert not outcomes[closed.id].ok and "is ignored" in outcomes[closed.id].error
    assert not outcomes[denial.id].ok and outcomes[denial.id].exit_code == 1
    assert done.succeeded == len(dead) - 1 and done.failed == 2
    for item in dead[1:]:
        result = outcomes[item.id].result
        assert result is not None and result.state == "resolved"
        assert result.outbox_id == item.outbox_id
        assert env.outbox(item.outbox_id).status == "pending"
        assert env.outbox(item.outbox_id).attempts == 0  # a fresh budget
    report = env.drain()
    assert (report.posted, report.dead) == (len(dead) - 1, 0)
    for item in dead[1:]:
        lines = posted_entry(env, item.outbox_id).lines
        assert any(line.account == DEAD_ACCOUNT for line in lines)
    assert env.items("dead_letter") == []  # the ignored one is closed too
    with env.sessions() as session:
        assert verify_audit_chain(session) is None


def test_a_retry_the_erp_refuses_again_reopens_its_dead_letter(env: Env) -> None:
    item = env.items("dead_letter")[0]
    env.ledger.set_account_active(DEAD_ACCOUNT, False)
    retried = env.service().retry_item(item.id, expected_version=item.version)
    assert retried.state == "resolved" and retried.action_id is not None
    assert env.drain().dead == 1
    again = env.item(item.id)
    assert again.state == "open" and again.version > retried.version
    assert [a["outcome"] for a in again.details["attempts"]] == ["permanent", "permanent"]
    env.ledger.set_account_active(DEAD_ACCOUNT, True)
    env.service().retry_item(item.id)
    assert env.drain().posted == 1


def test_bulk_ignore_by_filter_and_its_cap(env: Env) -> None:
    rejected = env.items("rejected_claim")
    where = WorkItemFilter(kinds=("rejected_claim",))
    preview = env.service().bulk("ignore", where, dry_run=True, note="x")
    assert isinstance(preview, Preview)
    assert (preview.count, preview.total) == (len(rejected), _total(rejected))
    capped = env.service().bulk("ignore", where, max_items=2, note="billed again")
    assert isinstance(capped, BulkResult) and capped.truncated and len(capped.outcomes) == 2
    rest = env.service().bulk("ignore", where, note="billed again")
    assert isinstance(rest, BulkResult) and not rest.truncated and rest.exit_code == 0
    assert len(rest.outcomes) == len(rejected) - 2
    assert env.items("rejected_claim") == []
    audit = env.audit()
    assert [r.action for r in audit[-len(rejected) :]] == ["ignore"] * len(rejected)
    assert {r.work_item_id for r in audit[-len(rejected) :]} == {i.id for i in rejected}


def test_bulk_write_off_posts_within_the_limit_and_asks_approval_above_it(env: Env) -> None:
    denials = [i for i in env.items("denial") if i.details["carcs"] == ["CO-50"]]
    assert any(i.amount <= D("500.00") for i in denials)
    assert any(i.amount > D("500.00") for i in denials)
    done = env.service().bulk("write_off", WorkItemFilter(text="CO-50"), reason="CO-50",
                              note="not medically necessary, appeal lost")  # fmt: skip
    assert isinstance(done, BulkResult) and done.exit_code == 0
    results = {o.item_id: o.result for o in done.outcomes}
    assert results.keys() == {i.id for i in denials}
    small = [i for i in denials if i.amount <= D("500.00")]
    for item in denials:
        result = results[item.id]
        assert result is not None
        if item in small:
            assert (result.action, result.state) == ("write_off", "written_off")
        else:
            assert (result.action, result.state) == ("write_off_requested", "open")
            assert env.item(result.related_item_id or 0).requested_by == "alice"
    balance = env.ledger.account_balance("4150")
    assert env.drain().posted == len(small)
    assert env.ledger.account_balance("4150") == balance + _total(small)


def test_bulk_approve_and_reprocess(env: Env, tmp_path: Path) -> None:
    approvals = env.items("approval")
    done = env.service("bob", "supervisor").bulk("approve", note="month-end review")
    assert isinstance(done, BulkResult) and done.succeeded == len(approvals) > 0
    assert env.drain().posted == len(approvals)

    errors = env.items("mapping_error")
    failed = env.service().bulk("reprocess")
    assert isinstance(failed, BulkResult) and failed.failed == len(errors) and failed.exit_code == 1
    assert all("still missing: carc:" in o.error for o in failed.outcomes)
    fixed = env.service(rules=fixed_rules(tmp_path)).bulk("reprocess")
    assert isinstance(fixed, BulkResult) and fixed.succeeded == len(errors)
    with env.sessions() as session:
        queued = session.scalars(select(OutboxEntry).where(OutboxEntry.status == "pending")).all()
    assert len(queued) == len(errors)
    assert env.drain().posted == len(errors)


def test_bulk_refuses_bad_requests_before_touching_any_item(env: Env) -> None:
    service = env.service()
    audit = len(env.audit())
    with pytest.raises(UsageError, match="no bulk action 'delete'"):
        service.bulk("delete")
    with pytest.raises(UsageError, match="ignore needs a note"):
        service.bulk("ignore", WorkItemFilter(kinds=("denial",)))
    with pytest.raises(UsageError, match="retry applies to dead_letter"):
        service.retry(where=WorkItemFilter(kinds=("denial",)))
    with pytest.raises(UsageError, match="unknown write-off reason"):
        service.bulk("write_off", reason="nope", note="x")
    with pytest.raises(UsageError, match="takes no option"):
        service.bulk("claim", note="x", colour="red")
    assert len(env.audit()) == audit
