"""The operator's own postings: write-offs and the reversal of a write-off or an approval.

Each runs inside the caller's transaction (see ``triage_actions``). A write-off is keyed
``keys.action_key(work_item_id, action_id)``, the action row being written first in the same
transaction, so the key is stable.

Reversal (decided here): only operator postings are reversed, i.e. a write-off and an approval;
a remap's or reprocess's posting is the payer's payment, whose entry does not depend on the
claim chosen, so a wrong remap is a matching question, not a ledger one. The compensating entry
swaps debits and credits, is dated today, and puts the item whose money it was back to ``open``
(a write-off's denial, an engine approval; a write-off approval's denial, the approval itself
staying resolved). The original posting must be in the ledger first (status posted).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.domain import CENT, ZERO
from claimsync_console.engine import workitems as wi
from claimsync_console.engine.keys import action_key
from claimsync_console.engine.outbox import enqueue_entry, entry_from_json, entry_to_json
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
    load_item,
    ready,
    record,
    resolution,
    result,
)
from claimsync_console.engine.triage_model import (
    ACTIVE_STATES,
    OPEN,
    RESOLVED,
    WRITE_OFF_KINDS,
    WRITTEN_OFF,
    ActionResult,
    InvalidTransitionError,
    NotFoundError,
    UnresolvedError,
    UsageError,
    require_note,
    snapshot,
)
from claimsync_console.engine.triage_postings import (
    compensation,
    item_context,
    parties,
    posting_fields,
)
from claimsync_console.store import queries_outbox as q
from claimsync_console.store.models_engine import WorkItem
from claimsync_console.store.models_triage import TriageAction

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
    """Debit the reason's write-off account, credit the payer receivable, close the item as
    written off. Over the operator's tier for that reason it posts nothing and opens an
    approval item instead (requested by the operator); the result then names that item."""
    text = require_note(note, "write_off")
    item = ready(session, actor, item_id, "write_off", expected_version, *WRITE_OFF_KINDS)
    _no_pending_approval(session, item)
    value = _amount(item, amount)
    if isinstance(actor.rules.write_off_account(reason), MissingRule):
        known = ", ".join(sorted(actor.rules.write_offs)) or "none"
        raise UsageError(f"unknown write-off reason {reason!r}; the rules know: {known}")
    payer_id, facility_id = parties(session, item, actor.rules)
    before = snapshot(item)
    row = record(
        session, actor, item.id, "write_off", {"reason": reason, "amount": str(value), "note": text}
    )
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
    need = approval_needed(plan, actor.rules, actor.role)
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
    details = {**(item.details or {}), "resolution": resolution(actor, "write_off", row)}
    close(session, actor, item, WRITTEN_OFF, outbox_id=outbox_id, details=details)
    entry = audit(
        session,
        actor,
        "write_off",
        item,
        before,
        reason=reason,
        note=text,
        target=f"outbox:{outbox_id}",
    )
    message = f"work item {item.id} written off: {value} as {reason} (outbox {outbox_id})"
    return result(item, "write_off", entry, message, row=row, outbox_id=outbox_id)


def _no_pending_approval(session: Session, item: WorkItem) -> None:
    pending = (item.details or {}).get("pending_approval")
    waiting = session.get(WorkItem, int(pending)) if pending else None
    if waiting is not None and waiting.state in ACTIVE_STATES:
        raise InvalidTransitionError(
            f"work item {item.id} already has a write-off waiting for approval"
            f" (work item {waiting.id})",
            item_id=item.id,
        )


def _amount(item: WorkItem, amount: Decimal | str | None) -> Decimal:
    """The item's amount by default; otherwise a positive amount in cents, at most the item's."""
    if amount is None:
        value = item.amount
    else:
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            raise UsageError(f"{amount!r} is not an amount") from None
    if not value.is_finite() or value <= ZERO or value != value.quantize(CENT):
        raise UsageError(f"a write-off amount must be positive, in cents: {amount}")
    if value > item.amount:
        raise UsageError(f"cannot write off {value}: work item {item.id} is for {item.amount}")
    return value


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
    origin = {"work_item_id": item.id, "action_id": row.id, "note": row.payload.get("note", "")}
    opened = wi.open_approval(
        session,
        source_key=f"write_off:{row.id}",
        amount=need.amount,
        reason_code=need.code,
        threshold=need.limit,
        requested_by=actor.operator,
        now=actor.now,
        details={
            "posting": {**posting, "entry": entry_to_json(plan.entry)},
            "cash_amount": "0.00",
            "required_role": need.required_role,
            "approval_kind": need.kind,
            "beyond_all_tiers": need.beyond_all_tiers,
            "rules_digest": actor.rules.digest,
            "origin": origin,
        },
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
    )
    message = (
        f"{need.amount} is over the {actor.role} limit of {need.limit} for write-off"
        f" {need.code}: approval work item {opened.id} waits for a {need.required_role}"
    )
    return result(item, "write_off_requested", entry, message, row=row, related=opened.id)


# -- reverse -----------------------------------------------------------------------------------


def reverse(session: Session, actor: Actor, action_id: int, *, note: str) -> ActionResult:
    """Post the compensating entry of a write-off or an approval and reopen the item whose
    money it was (see the module docstring)."""
    text = require_note(note, "reverse")
    original = session.get(TriageAction, action_id)
    if original is None:
        raise NotFoundError(f"no action {action_id}")
    posted = _reversible(session, original)
    item = load_item(session, original.work_item_id)
    origin = (item.details or {}).get("origin") if original.action == "approve" else None
    reopen = load_item(session, int(origin["work_item_id"])) if origin else item
    expected = WRITTEN_OFF if original.action == "write_off" or origin else RESOLVED
    if reopen.state != expected:
        raise InvalidTransitionError(
            f"work item {reopen.id} is {reopen.state}, not {expected}: action {original.id}"
            " is no longer what closed it",
            item_id=reopen.id,
        )
    before = snapshot(reopen)
    rev = record(session, actor, reopen.id, "reverse", {"reverses": original.id, "note": text})
    entry = compensation(
        entry_from_json(posted.entry),
        key=action_key(reopen.id, rev.id),
        on=actor.now.date(),
        note=text,
    )
    outbox_id = enqueue_entry(
        session,
        entry,
        kind="operator",
        amount=posted.amount,
        cash_amount=-posted.cash_amount,
        now=actor.now,
        remittance_id=posted.remittance_id,
        trace_number=posted.trace_number,
        claim_payment_id=posted.claim_payment_id,
        work_item_id=reopen.id,
    )
    rev.outbox_id, rev.reverses_action_id = outbox_id, original.id
    original.reversed_by_action_id = rev.id
    done = {
        "action_id": rev.id,
        "reverses": original.id,
        "by": actor.operator,
        "at": actor.now.isoformat(),
        "outbox_id": outbox_id,
    }
    details = {k: v for k, v in (reopen.details or {}).items() if k != "pending_approval"}
    details["reversals"] = [*details.get("reversals", []), done]
    change(
        session,
        actor,
        reopen,
        state=OPEN,
        resolved_at=None,
        assigned_to=None,
        lease_expires_at=None,
        outbox_id=None,
        details=details,
    )
    if origin:
        change(session, actor, item, details={**(item.details or {}), "reversed_by": rev.id})
    audit_row = audit(
        session,
        actor,
        "reverse",
        reopen,
        before,
        reason=original.action,
        note=text,
        target=f"action:{original.id}",
    )
    message = (
        f"action {original.id} ({original.action}) reversed: compensating entry queued"
        f" (outbox {outbox_id}); work item {reopen.id} is open again"
    )
    return result(reopen, "reverse", audit_row, message, row=rev, outbox_id=outbox_id)


def _reversible(session: Session, action: TriageAction) -> Any:
    """The posted outbox row of an action that may be reversed, or why not."""
    if action.reversed_by_action_id is not None:
        raise InvalidTransitionError(
            f"action {action.id} was already reversed by action {action.reversed_by_action_id}"
        )
    if action.action not in REVERSIBLE or action.outbox_id is None:
        raise InvalidTransitionError(
            f"action {action.id} is a {action.action} that posted nothing of the operator's own:"
            " only write-offs and approvals can be reversed (a remap posts the payer's payment,"
            " whatever the claim)"
        )
    posted = q.get_outbox_row(session, action.outbox_id)
    if posted is None or posted.status != q.POSTED:
        status = posted.status if posted is not None else "missing"
        raise InvalidTransitionError(
            f"action {action.id}'s posting (outbox {action.outbox_id}) is {status}, not in the"
            " ledger: wait for it to post (or retry it) before reversing"
        )
    return posted
