"""The triage actions that post the payer's money: remap, reprocess and approve.

Each runs inside the caller's transaction (see ``triage_actions``) and queues its posting with
``enqueue_entry`` in that same transaction: the transactional outbox. A remap or a reprocess
posts the payer's payment through the pipeline, under the payment's own key; an approval queues
the entry its item holds (``pipeline.enqueue_approved``), or, when that entry was posted once and
reversed, the same entry under ``keys.action_key(item, action)``, since its first key is spent.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.domain import ZERO, WorkItemKind, dollars
from claimsync_console.engine import pipeline
from claimsync_console.engine.keys import action_key
from claimsync_console.engine.matching import open_payment_followups
from claimsync_console.engine.outbox import enqueue_entry, entry_from_json
from claimsync_console.engine.triage_actions import (
    APPROVAL,
    Actor,
    audit,
    close,
    load_item,
    ready,
    record,
    resolution,
    result,
)
from claimsync_console.engine.triage_model import (
    ACTIVE_STATES,
    RESOLVED,
    ActionResult,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    RemapNeedsForce,
    UnresolvedError,
    approve_refusal,
    beyond_limits,
    snapshot,
)
from claimsync_console.engine.triage_postings import (
    match_by_hand,
    post_payment,
    remap_problems,
)
from claimsync_console.engine.triage_write_off import settle_write_off, written
from claimsync_console.store.models import ClaimRow
from claimsync_console.store.models_engine import WorkItem

UNMATCHED = WorkItemKind.UNMATCHED_REMITTANCE.value
MAPPING_ERROR = WorkItemKind.MAPPING_ERROR.value


# -- remap -------------------------------------------------------------------------------------


def remap(
    session: Session,
    actor: Actor,
    item_id: int,
    *,
    claim_id: int,
    note: str,
    expected_version: int | None,
    force: bool = False,
) -> ActionResult:
    """Match an unmatched payment to ``claim_id`` by hand, open its denial if it is one, and
    post it as the pipeline would (entry, approval or mapping error). The item is resolved
    whatever the posting's route: the question it asked, which claim, is answered.

    A claim that looks wrong for the payment (``remap_problems``: another payer, already paid,
    another charge) is refused with RemapNeedsForce unless ``force``; a forced remap records
    the warnings it overrode in its action's payload and its audit row (reason ``forced``)."""
    item, problems = _remap_target(session, actor, item_id, claim_id, expected_version)
    if problems and not force:
        raise RemapNeedsForce(item.id, claim_id, problems)
    overridden = {"overridden_warnings": problems} if problems else {}
    before = snapshot(item)
    row = record(session, actor, item.id, "remap", {"claim_id": claim_id, **overridden})
    payment_id = item.claim_payment_id
    assert payment_id is not None  # _remap_target checked it
    match_by_hand(session, payment_id, claim_id, actor.now)
    denial = open_payment_followups(session, payment_id, claim_id, now=actor.now)
    routed = post_payment(session, item, actor.rules, now=actor.now, requested_by=actor.operator)
    outbox_id = routed.target_id if routed.outcome == "enqueued" else None
    row.outbox_id = outbox_id
    row.payload = {**row.payload, "outcome": routed.outcome, "target_id": routed.target_id}
    done = resolution(actor, "remap", row, claim_id=claim_id, outcome=routed.outcome)
    close(
        session,
        actor,
        item,
        RESOLVED,
        claim_id=claim_id,
        outbox_id=outbox_id,
        details={**(item.details or {}), "resolution": done},
    )
    entry = audit(
        session,
        actor,
        "remap",
        item,
        before,
        reason="forced" if problems else "",
        note=note,
        target=f"claim:{claim_id}",
        extra=overridden,
    )
    said = {
        "enqueued": f"its payment is queued for the ERP (outbox {outbox_id})",
        "approval": f"its posting needs approval (work item {routed.target_id})",
        "mapping_error": f"its posting waits on work item {routed.target_id}: {routed.detail}",
        "nothing": routed.detail,
    }[routed.outcome]
    message = f"work item {item.id} matched to claim {claim_id}; {said}"
    if denial:
        message += "; the payment is a denial, so a denial item was opened"
    if problems:
        message += f"; forced over {len(problems)} warning(s): {'; '.join(problems)}"
    related = routed.target_id if routed.outcome in ("approval", "mapping_error") else None
    return result(item, "remap", entry, message, row=row, outbox_id=outbox_id, related=related)


def remap_check(session: Session, actor: Actor, item_id: int, claim_id: int) -> tuple[str, ...]:
    """``remap``'s warnings for this claim, without remapping (see ``remap_problems``)."""
    return tuple(_remap_target(session, actor, item_id, claim_id, None)[1])


def _remap_target(
    session: Session, actor: Actor, item_id: int, claim_id: int, expected_version: int | None
) -> tuple[WorkItem, list[str]]:
    item = ready(session, actor, item_id, "remap", expected_version, UNMATCHED)
    if item.claim_payment_id is None or item.remittance_id is None:
        raise InvalidTransitionError(f"work item {item.id} names no claim payment", item_id=item.id)
    claim = session.get(ClaimRow, claim_id)
    if claim is None:
        raise NotFoundError(f"no claim {claim_id}", item_id=item.id)
    return item, remap_problems(session, item, claim)


def reprocess(
    session: Session, actor: Actor, item_id: int, *, note: str, expected_version: int | None
) -> ActionResult:
    """Rebuild a mapping error's posting with the current rules (after a rules fix). If they
    still lack something, nothing changes and the error names what is missing."""
    item = ready(session, actor, item_id, "remap --reprocess", expected_version, MAPPING_ERROR)
    before = snapshot(item)
    summary = pipeline.reprocess(
        session, actor.rules, now=actor.now, work_item_ids=[item.id], requested_by=actor.operator
    )
    if summary.conflicts:
        raise ConflictError(
            f"work item {item.id} was changed meanwhile: reload it", item_id=item.id
        )
    session.refresh(item)
    details = item.details or {}
    if not summary.considered:
        raise UnresolvedError(
            f"work item {item.id} names no claim payment or check to rebuild", item_id=item.id
        )
    if not summary.resolved:
        if details.get("reason") == pipeline.OUT_OF_BALANCE:
            why = f"{pipeline.OUT_OF_BALANCE}: {details.get('message', '')}"
        else:
            why = f"still missing: {', '.join(details.get('missing', [])) or item.error}"
        raise UnresolvedError(f"work item {item.id} cannot post yet, {why}", item_id=item.id)
    done = details.get("resolution", {})
    outcome, target = done.get("outcome", "nothing"), done.get("target_id")
    outbox_id = target if outcome == "enqueued" else None
    payload = {"outcome": outcome, "target_id": target, "rules_digest": actor.rules.digest}
    row = record(session, actor, item.id, "reprocess", payload, outbox_id=outbox_id)
    entry = audit(
        session,
        actor,
        "reprocess",
        item,
        before,
        note=note,
        target=f"rules:{actor.rules.digest[:12]}",
    )
    said = f"queued (outbox {outbox_id})" if outbox_id else f"routed to {outcome} {target or ''}"
    message = f"work item {item.id} resolved with the current rules; its posting is {said}"
    related = target if outcome == "approval" else None
    return result(
        item, "reprocess", entry, message.strip(), row=row, outbox_id=outbox_id, related=related
    )


# -- approve -----------------------------------------------------------------------------------


def approve(
    session: Session, actor: Actor, item_id: int, *, note: str, expected_version: int | None
) -> ActionResult:
    """Queue the entry an approval item holds. Never by its requester; only by a role whose
    tier covers the amount. A write-off approval also writes off the item that asked for it."""
    item = ready(session, actor, item_id, "approve", expected_version, APPROVAL)
    details = dict(item.details or {})
    why = approve_refusal(actor.rules, item.id, details, item.amount, item.requested_by,
                          operator=actor.operator, role=actor.role)  # fmt: skip
    if why is not None:
        raise PermissionDeniedError(why, item_id=item.id)
    posting = details.get("posting")
    if not posting:
        raise InvalidTransitionError(f"work item {item.id} holds no posting", item_id=item.id)
    kind, code = details.get("approval_kind", "adjustment"), details.get("reason_code", "")
    origin = _origin(session, item)
    before = snapshot(item)
    row = record(
        session, actor, item.id, "approve", {"kind": kind, "code": code, "amount": str(item.amount)}
    )
    if details.get("reversals"):  # its first posting was reversed: this is a new one
        outbox_id = _enqueue_held(session, item, posting, action_key(item.id, row.id), actor)
    else:
        outbox_id = pipeline.enqueue_approved(session, item, now=actor.now)
    row.outbox_id = outbox_id
    details["resolution"] = resolution(actor, "approve", row)
    close(session, actor, item, RESOLVED, outbox_id=outbox_id, details=details)
    entry = audit(
        session,
        actor,
        "approve",
        item,
        before,
        reason=code,
        note=note,
        target=f"outbox:{outbox_id}",
    )
    message = (
        f"work item {item.id} approved: {kind} {code} {dollars(item.amount)} queued"
        f" (outbox {outbox_id})"
    )
    if flagged := beyond_limits(details):
        message += f", {flagged}"
    if origin is not None:
        taken, left = _write_off_origin(session, actor, origin, item, code, outbox_id)
        if left == ZERO:
            message += f"; work item {origin.id} written off"
        else:
            message += (
                f"; {dollars(taken)} of work item {origin.id} written off,"
                f" {dollars(left)} stays open"
            )
    return result(
        item,
        "approve",
        entry,
        message,
        row=row,
        outbox_id=outbox_id,
        related=origin.id if origin is not None else None,
    )


def _origin(session: Session, approval: WorkItem) -> WorkItem | None:
    """The item a write-off approval was requested for, which must still be open, with at
    least the approved amount open on it."""
    origin = (approval.details or {}).get("origin")
    if not origin:
        return None
    item = load_item(session, int(origin["work_item_id"]))
    if item.state not in ACTIVE_STATES:
        raise ConflictError(
            f"work item {item.id}, which this approval would write off, is {item.state} now:"
            " ignore the approval instead",
            item_id=approval.id,
        )
    if approved_write_off(approval) > item.amount:
        raise ConflictError(
            f"work item {item.id} has only {dollars(item.amount)} open now, less than the"
            f" {dollars(approved_write_off(approval))} this approval would write off: ignore the"
            " approval instead",
            item_id=approval.id,
        )
    return item


def approved_write_off(approval: WorkItem) -> Decimal:
    """The amount a write-off approval posts: its request's own, which is less than the
    approval's amount when earlier write-offs on the item count towards the tier (older
    approvals, without it, post their amount)."""
    asked = (approval.details or {}).get("origin", {})
    return Decimal(asked["amount"]) if asked.get("amount") else approval.amount


def _write_off_origin(
    session: Session, actor: Actor, origin: WorkItem, approval: WorkItem, code: str, outbox: int
) -> tuple[Decimal, Decimal]:
    """The approved write-off taken off the item that asked for it (a partial one leaves it
    open with the remainder, as a direct write-off does): (amount written off, what stays open)."""
    before = snapshot(origin)
    asked = (approval.details or {}).get("origin", {})
    amount = approved_write_off(approval)
    done = {"reason": code, "approval": approval.id, "approved_by": actor.operator}
    taken = {"action_id": asked.get("action_id"), **done, "by": approval.requested_by}
    closing = {**resolution(actor, "approve", None), "approval": approval.id}
    approved = {"write_off": {**done, "amount": str(amount), "outbox_id": outbox}}
    left = settle_write_off(session, actor, origin, amount, outbox, taken, closing, approved)
    audit(
        session,
        actor,
        "write_off",
        origin,
        before,
        reason=code,
        note=str(asked.get("note", "")),
        target=f"approval:{approval.id}",
        extra=written(amount, left),
    )
    return amount, left


def _enqueue_held(
    session: Session, item: WorkItem, posting: dict[str, Any], key: str, actor: Actor
) -> int:
    entry = replace(entry_from_json(posting["entry"]), idempotency_key=key)
    return enqueue_entry(
        session,
        entry,
        kind=str(posting["kind"]),
        amount=Decimal(posting["amount"]),
        cash_amount=Decimal(posting["cash_amount"]),
        now=actor.now,
        remittance_id=posting.get("remittance_id"),
        trace_number=str(posting.get("trace_number") or ""),
        claim_payment_id=posting.get("claim_payment_id"),
        work_item_id=item.id,
    )
