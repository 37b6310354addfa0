"""The operator's own postings: write-offs (their reversal is ``triage_reverse``).

Each runs inside the caller's transaction (see ``triage_actions``). A write-off is keyed
``keys.action_key(work_item_id, action_id)``, the action row being written first in the same
transaction, so the key is stable.

A write-off of less than the item's open amount leaves the item open, with the remainder as its
amount, so the rest is still chased (stop 8); only a write-off of the whole remaining amount
closes it as written off. Each write-off is listed in ``details.write_offs``; the audit row's
``after`` carries ``write_off_amount`` and ``remainder``.

"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.domain import ZERO, dollars
from claimsync_console.engine import workitems as wi
from claimsync_console.engine.keys import action_key
from claimsync_console.engine.outbox import enqueue_entry, entry_to_json
from claimsync_console.engine.posting import (
    ApprovalRequirement,
    MissingRules,
    PostingPlan,
    approval_needed,
    build_write_off_entry,
)
from claimsync_console.engine.rules import MissingRule
from claimsync_console.engine.triage_actions import (
    Actor,
    audit,
    change,
    close,
    ready,
    record,
    require_no_pending_approval,
    resolution,
    result,
)
from claimsync_console.engine.triage_model import (
    WRITE_OFF_KINDS,
    WRITTEN_OFF,
    ActionResult,
    ConflictError,
    UnresolvedError,
    UsageError,
    beyond_limits,
    parse_write_off_amount,
    require_note,
    snapshot,
)
from claimsync_console.engine.triage_postings import (
    item_context,
    parties,
    posting_fields,
)
from claimsync_console.store.models_engine import WorkItem
from claimsync_console.store.models_triage import TriageAction

#: The actions ``triage_reverse.reverse`` undoes (the console offers these).
REVERSIBLE = ("write_off", "approve")


# -- write off ---------------------------------------------------------------------------------


def write_off(
    session: Session,
    actor: Actor,
    item_id: int,
    *,
    reason: str,
    note: str,
    amount: Decimal | str | None,
    expected_version: int | None,
) -> ActionResult:
    """Debit the reason's write-off account, credit the payer receivable, and take ``amount``
    (default: all that is open) off the item: the whole of it closes the item as written off,
    less leaves it open with the remainder. Over the operator's tier for that reason it posts
    nothing and opens an approval item instead (requested by the operator); the result then
    names that item."""
    text = require_note(note, "write_off")
    item = ready(session, actor, item_id, "write_off", expected_version, *WRITE_OFF_KINDS)
    require_no_pending_approval(session, item)
    value = _amount(item, amount)
    if isinstance(actor.rules.write_off_account(reason), MissingRule):
        known = ", ".join(sorted(actor.rules.write_offs)) or "none"
        raise UsageError(f"unknown write-off reason {reason!r}; the rules know: {known}")
    payer_id, facility_id = parties(session, item, actor.rules)
    before = snapshot(item)
    payload = {"reason": reason, "amount": str(value), "remainder": str(item.amount - value)}
    row = record(session, actor, item.id, "write_off", {**payload, "note": text})
    plan = build_write_off_entry(
        reason=reason,
        amount=value,
        payer_id=payer_id,
        facility_id=facility_id,
        rules=actor.rules,
        source_key=action_key(item.id, row.id),
        entry_date=actor.now.date(),
        reference=item.patient_control_number or item.trace_number,
    )
    if isinstance(plan, MissingRules) or plan.entry is None:
        raise UnresolvedError(f"cannot write off work item {item.id}: {plan}", item_id=item.id)
    posting = posting_fields(item, kind="write_off", amount=value, cash=ZERO)
    prior = written_before(item)
    cumulative = tuple(replace(a, amount=a.amount + prior) for a in plan.amounts)
    need = approval_needed(replace(plan, amounts=cumulative), actor.rules, actor.role)
    if need is not None:
        return _request_approval(session, actor, item, row, plan, need, posting, before)
    outbox_id = enqueue_entry(
        session,
        plan.entry,
        kind="write_off",
        amount=value,
        cash_amount=ZERO,
        now=actor.now,
        remittance_id=item.remittance_id,
        trace_number=item.trace_number,
        claim_payment_id=item.claim_payment_id,
        work_item_id=item.id,
    )
    row.outbox_id = outbox_id
    taken = {"action_id": row.id, "reason": reason, "by": actor.operator}
    remainder = settle_write_off(
        session, actor, item, value, outbox_id, taken, resolution(actor, "write_off", row)
    )
    entry = audit(
        session,
        actor,
        "write_off",
        item,
        before,
        reason=reason,
        note=text,
        target=f"outbox:{outbox_id}",
        extra=written(value, remainder),
    )
    if remainder == ZERO:
        message = (
            f"work item {item.id} written off: {dollars(value)} as {reason} (outbox {outbox_id})"
        )
    else:
        message = (
            f"work item {item.id}: {dollars(value)} written off as {reason} (outbox {outbox_id});"
            f" {dollars(remainder)} stays open"
        )
    return result(item, "write_off", entry, message, row=row, outbox_id=outbox_id)


def written(amount: Decimal, remainder: Decimal) -> dict[str, str]:
    """What a write-off's audit row adds to the item's snapshot: the amount taken, and what it
    left open (the snapshot's own ``amount`` alone cannot tell a partial write-off apart)."""
    return {"write_off_amount": str(amount), "remainder": str(remainder)}


def settle_write_off(
    session: Session,
    actor: Actor,
    item: WorkItem,
    amount: Decimal,
    outbox_id: int,
    taken: dict[str, Any],
    closing: dict[str, Any],
    more: dict[str, Any] | None = None,
) -> Decimal:
    """Take a queued write-off of ``amount`` off ``item`` and return what stays open. All of
    it closes the item as written off (``closing`` becomes its ``details.resolution``); less
    keeps it open, and in the queues, with the remainder as its amount. Either way the
    write-off joins ``details.write_offs`` (``taken`` plus the amounts and the outbox row);
    ``more`` is merged into the details too, in the same update."""
    remainder = item.amount - amount
    if remainder < ZERO:
        raise ConflictError(
            f"work item {item.id} has {dollars(item.amount)} open now, less than the"
            f" {dollars(amount)} to write"
            " off: reload it",
            item_id=item.id,
        )
    details = {k: v for k, v in (item.details or {}).items() if k != "pending_approval"}
    details.update(more or {})
    done = {**taken, "amount": str(amount), "remainder": str(remainder), "outbox_id": outbox_id}
    details["write_offs"] = [*details.get("write_offs", []), {**done, "at": actor.now.isoformat()}]
    if remainder == ZERO:
        details["resolution"] = closing
        close(session, actor, item, WRITTEN_OFF, outbox_id=outbox_id, details=details)
    else:
        change(session, actor, item, amount=remainder, details=details)
    return remainder


def written_before(item: WorkItem) -> Decimal:
    """What earlier write-offs, not reversed, took off the item. A write-off's approval tier is
    judged on this plus its own amount: partial write-offs must not split an amount over the
    operator's limit into pieces under it."""
    taken = (item.details or {}).get("write_offs", [])
    return sum((Decimal(w["amount"]) for w in taken if not w.get("reversed_by")), ZERO)


def _amount(item: WorkItem, amount: Decimal | str | None) -> Decimal:
    """All that is open on the item by default, else ``parse_write_off_amount``'s reading of
    ``amount`` (plain dollars and cents, positive, at most the item's open amount)."""
    if amount is not None:
        return parse_write_off_amount(amount, item.amount)
    if item.amount <= ZERO:
        raise UsageError(
            f"work item {item.id} has nothing open to write off ({dollars(item.amount)})"
        )
    return parse_write_off_amount(item.amount)


def _request_approval(
    session: Session,
    actor: Actor,
    item: WorkItem,
    row: TriageAction,
    plan: PostingPlan,
    need: ApprovalRequirement,
    posting: dict[str, Any],
    before: dict[str, Any],
) -> ActionResult:
    assert plan.entry is not None
    row.action = "write_off_requested"
    origin = {
        "work_item_id": item.id,
        "action_id": row.id,
        "note": row.payload.get("note", ""),
        # what the approval posts: the approval's own amount also counts earlier write-offs
        "amount": posting["amount"],
    }
    details: dict[str, Any] = {
        "posting": {**posting, "entry": entry_to_json(plan.entry)},
        "cash_amount": "0.00",
        "required_role": need.required_role,
        "approval_kind": need.kind,
        "beyond_all_tiers": need.beyond_all_tiers,
        "rules_digest": actor.rules.digest,
        "origin": origin,
    }
    top = actor.rules.tiers(need.kind, need.code)[-1:]
    if need.beyond_all_tiers and top and top[0].max_amount is not None:
        details.update(top_limit=str(top[0].max_amount), top_role=top[0].role)
    opened = wi.open_approval(
        session,
        source_key=f"write_off:{row.id}",
        amount=need.amount,
        reason_code=need.code,
        threshold=need.limit,
        requested_by=actor.operator,
        now=actor.now,
        details=details,
        **item_context(item),
    )
    change(session, actor, item, details={**(item.details or {}), "pending_approval": opened.id})
    entry = audit(
        session,
        actor,
        "write_off_requested",
        item,
        before,
        reason=need.code,
        note=origin["note"],
        target=f"approval:{opened.id}",
        extra={"write_off_amount": posting["amount"]},
    )
    message = (
        f"{dollars(need.amount)} is over the {actor.role} limit of {dollars(need.limit)}"
        f" for write-off"
        f" {need.code}: approval work item {opened.id} waits for a {need.required_role}"
    )
    earlier = need.amount - Decimal(posting["amount"])
    if earlier > ZERO:  # the approval covers the item's earlier write-offs too
        now_amount = dollars(Decimal(posting["amount"]))
        message += f" ({now_amount} now, {dollars(earlier)} written off before)"
    if flagged := beyond_limits(details):
        message += f"; {flagged}"
    return result(item, "write_off_requested", entry, message, row=row, related=opened.id)
