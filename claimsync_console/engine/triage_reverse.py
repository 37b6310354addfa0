"""Reversing an operator's posting: a write-off or an approval.

Runs inside the caller's transaction (see ``triage_actions``). Only operator postings are
reversed (decided in issue #3): a remap's or reprocess's posting is the payer's payment, whose
entry does not depend on the claim chosen, so a wrong remap is a matching question, not a ledger
one. The compensating entry swaps debits and credits, is dated today, and puts the item whose
money it was back to ``open`` (a write-off's denial, an engine approval; a write-off approval's
denial, the approval itself staying resolved). A reversed write-off's amount is open again on
its item: added to what is still open (after a partial write-off), or, on an item a later
write-off closed, the item reopens with just that amount. The original posting must be in the
ledger first (status posted).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.domain import dollars
from claimsync_console.engine.keys import action_key
from claimsync_console.engine.outbox import enqueue_entry, entry_from_json
from claimsync_console.engine.triage_actions import (
    Actor,
    audit,
    change,
    load_item,
    record,
    result,
)
from claimsync_console.engine.triage_model import (
    ACTIVE_STATES,
    OPEN,
    RESOLVED,
    WRITTEN_OFF,
    ActionResult,
    InvalidTransitionError,
    NotFoundError,
    require_not_leased_by_other,
    require_note,
    snapshot,
)
from claimsync_console.engine.triage_postings import compensation
from claimsync_console.engine.triage_write_off import REVERSIBLE
from claimsync_console.store import queries_outbox as q
from claimsync_console.store.models_engine import WorkItem
from claimsync_console.store.models_triage import TriageAction


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
    wrote_off = original.action == "write_off" or bool(origin)
    values = _reopening(actor, original, reopen, posted.amount if wrote_off else None)
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
    details = dict(reopen.details or {})
    if "state" in values:  # a closed item's request for approval is over; an open one's stands
        details.pop("pending_approval", None)
    details["reversals"] = [*details.get("reversals", []), done]
    details["write_offs"] = [  # no longer counted towards the item's approval tier
        {**w, "reversed_by": rev.id} if w.get("outbox_id") == original.outbox_id else w
        for w in details.get("write_offs", [])
    ]
    change(session, actor, reopen, details=details, **values)
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
    again = "is open again" if "state" in values else "stays open"
    message = (
        f"action {original.id} ({original.action}) reversed: compensating entry queued"
        f" (outbox {outbox_id}); work item {reopen.id} {again}"
    )
    if wrote_off:
        message += f" with {dollars(reopen.amount)} open"
    return result(reopen, "reverse", audit_row, message, row=rev, outbox_id=outbox_id)


def _reopening(
    actor: Actor, original: TriageAction, item: WorkItem, write_off: Decimal | None
) -> dict[str, Any]:
    """The item's new columns once ``original`` is reversed, or why it cannot be.

    An engine approval (``write_off`` None) closed its own item: it must still be resolved.
    A write-off's amount goes back on its item: an open item (a partial write-off) keeps
    its state and lease and gets the amount added; a written-off item reopens with just that
    amount (all of it when this write-off closed the item, else the part this one took while a
    later write-off, still standing, took the rest)."""
    reopened: dict[str, Any] = {
        "state": OPEN, "resolved_at": None, "assigned_to": None, "lease_expires_at": None,
        "outbox_id": None,
    }  # fmt: skip
    if write_off is None:
        if item.state != RESOLVED:
            raise InvalidTransitionError(
                f"work item {item.id} is {item.state}, not {RESOLVED}: action {original.id}"
                " is no longer what closed it",
                item_id=item.id,
            )
        return reopened
    if item.state == WRITTEN_OFF:
        return {**reopened, "amount": write_off}
    if item.state in ACTIVE_STATES:
        require_not_leased_by_other(item, actor.operator, actor.now)
        return {"amount": item.amount + write_off}
    raise InvalidTransitionError(
        f"work item {item.id} is {item.state}: the {write_off} that action {original.id} wrote"
        " off can only go back on an open or written-off item",
        item_id=item.id,
    )


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
