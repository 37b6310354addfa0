"""The triage actions that post nothing (retry re-queues an existing posting), and the steps
every action shares: load and check the item, record the action, change the item under its
version, write the audit row.

Each function runs inside the caller's transaction (``TriageService`` opens one per action) and
never commits, so the item's change, the posting, the action row and the audit row commit
together or not at all. The item is changed with ``update_work_item``'s version check as late as
possible but always before the commit: a concurrent change anywhere in between fails the whole
transaction with a ConflictError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.domain import WorkItemKind
from claimsync_console.engine.rules import RulesBook
from claimsync_console.engine.triage_model import (
    ACTIVE_STATES,
    IGNORED,
    IN_PROGRESS,
    OPEN,
    RESOLVED,
    ActionResult,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    RevealedPhi,
    TriageLimits,
    lease_holder,
    require_active,
    require_kind,
    require_not_leased_by_other,
    require_note,
    require_version,
    snapshot,
)
from claimsync_console.engine.triage_postings import identity
from claimsync_console.store import queries_engine as qe
from claimsync_console.store import queries_outbox as q
from claimsync_console.store.models_engine import AuditEntry, WorkItem
from claimsync_console.store.models_triage import TriageAction

DEAD_LETTER = WorkItemKind.DEAD_LETTER.value
APPROVAL = WorkItemKind.APPROVAL.value


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, with what rules, at which instant (one ``now`` per transaction)."""

    operator: str
    role: str
    now: datetime
    rules: RulesBook
    limits: TriageLimits


# -- the shared steps --------------------------------------------------------------------------


def load_item(session: Session, item_id: int) -> WorkItem:
    item = session.get(WorkItem, item_id)
    if item is None:
        raise NotFoundError(f"no work item {item_id}", item_id=item_id)
    return item


def ready(
    session: Session,
    actor: Actor,
    item_id: int,
    action: str,
    expected_version: int | None,
    *kinds: str,
) -> WorkItem:
    """The item, if ``action`` may act on it now: the version the caller saw (a stale one is a
    conflict whatever changed), its kind, an active state, and no one else's live lease."""
    item = load_item(session, item_id)
    require_version(item, expected_version)
    if kinds:
        require_kind(item, action, *kinds)
    require_active(item, action)
    require_not_leased_by_other(item, actor.operator, actor.now)
    return item


def require_no_pending_approval(session: Session, item: WorkItem) -> None:
    """Refuse to close (or write off again) an item whose write-off request still waits for a
    supervisor: closing it would leave the approval open with nothing to write off, and the
    approval could then never be approved (its origin is closed). The request is decided, or
    ignored, first; ignoring it frees the item."""
    pending = (item.details or {}).get("pending_approval")
    waiting = session.get(WorkItem, int(pending)) if pending else None
    if waiting is not None and waiting.state in ACTIVE_STATES:
        raise InvalidTransitionError(
            f"work item {item.id} has a write-off waiting for approval (work item {waiting.id}):"
            " approve or ignore that first",
            item_id=item.id,
        )


def change(session: Session, actor: Actor, item: WorkItem, **values: Any) -> None:
    """Write ``values`` only if the item is still at the version read in this transaction."""
    try:
        qe.update_work_item(
            session, item.id, expected_version=item.version, now=actor.now, **values
        )
    except qe.StaleWorkItemError as exc:
        raise ConflictError(
            f"work item {item.id} was changed by someone else meanwhile: reload it",
            item_id=item.id,
        ) from exc
    session.refresh(item)


def close(session: Session, actor: Actor, item: WorkItem, state: str, **values: Any) -> None:
    change(
        session, actor, item, state=state, resolved_at=actor.now, lease_expires_at=None, **values
    )


def resolution(actor: Actor, action: str, row: TriageAction | None, **extra: Any) -> dict[str, Any]:
    """What ``details.resolution`` says about who closed an item, and how."""
    found: dict[str, Any] = {
        "by": actor.operator,
        "role": actor.role,
        "action": action,
        "at": actor.now.isoformat(),
    }
    if row is not None:
        found["action_id"] = row.id
    return {**found, **extra}


def record(
    session: Session,
    actor: Actor,
    item_id: int,
    action: str,
    payload: dict[str, Any],
    outbox_id: int | None = None,
) -> TriageAction:
    """The action's row; flushed, so its id can key the posting it makes."""
    row = TriageAction(
        work_item_id=item_id,
        action=action,
        operator=actor.operator,
        role=actor.role,
        outbox_id=outbox_id,
        created_at=actor.now,
        payload=payload,
    )
    session.add(row)
    session.flush()
    return row


def audit(
    session: Session,
    actor: Actor,
    action: str,
    item: WorkItem,
    before: dict[str, Any] | None,
    *,
    reason: str = "",
    note: str = "",
    target: str = "",
    extra: dict[str, Any] | None = None,
) -> AuditEntry:
    """The action's audit row. ``extra`` goes into ``after`` next to the item's snapshot: what
    the action itself decided that the item's columns do not show (the amount a write-off took
    and what it left open, the warnings a forced remap overrode)."""
    return qe.append_audit(
        session,
        at=actor.now,
        operator=actor.operator,
        role=actor.role,
        action=action,
        work_item_id=item.id,
        target=target,
        before=before,
        after={**snapshot(item), **(extra or {})},
        reason=reason,
        note=note,
    )


def result(
    item: WorkItem,
    action: str,
    entry: AuditEntry,
    message: str,
    *,
    row: TriageAction | None = None,
    outbox_id: int | None = None,
    related: int | None = None,
) -> ActionResult:
    return ActionResult(
        item_id=item.id,
        action=action,
        state=item.state,
        version=item.version,
        outbox_id=outbox_id,
        audit_id=entry.id,
        message=message,
        action_id=row.id if row is not None else None,
        related_item_id=related,
    )


# -- leases ------------------------------------------------------------------------------------


def claim_item(
    session: Session, actor: Actor, item_id: int, *, expected_version: int | None
) -> ActionResult:
    """open -> in_progress, leased to the operator (taking over an expired lease, or renewing
    one's own)."""
    item = ready(session, actor, item_id, "claim", expected_version)
    before = snapshot(item)
    until = actor.now + actor.limits.lease
    change(
        session, actor, item, state=IN_PROGRESS, assigned_to=actor.operator, lease_expires_at=until
    )
    entry = audit(session, actor, "claim", item, before, target=f"lease:{until.isoformat()}")
    return result(item, "claim", entry, f"work item {item.id} is yours until {until:%H:%M} UTC")


def release_item(
    session: Session, actor: Actor, item_id: int, *, expected_version: int | None
) -> ActionResult:
    """in_progress -> open. Only the holder releases a live lease; an expired one anyone may."""
    item = load_item(session, item_id)
    if item.state != IN_PROGRESS:
        raise InvalidTransitionError(
            f"work item {item.id} is {item.state}: only an in_progress item can be released",
            item_id=item.id,
        )
    require_version(item, expected_version)
    holder = lease_holder(item, actor.now)
    if holder is not None and holder != actor.operator:
        raise ConflictError(f"work item {item.id} is leased to {holder}", item_id=item.id)
    before = snapshot(item)
    change(session, actor, item, state=OPEN, assigned_to=None, lease_expires_at=None)
    entry = audit(session, actor, "release", item, before)
    return result(item, "release", entry, f"work item {item.id} is back in the queue")


# -- actions that post nothing new -------------------------------------------------------------


def retry(
    session: Session, actor: Actor, item_id: int, *, expected_version: int | None
) -> ActionResult:
    """A dead letter's posting goes back to pending with a fresh attempt budget, due now, and
    the item is resolved: the operator's part is done. If the ERP refuses it again, the worker
    reopens the same item (``open_dead_letter`` reopens by the outbox row), with the history."""
    item = ready(session, actor, item_id, "retry", expected_version, DEAD_LETTER)
    outbox = q.get_outbox_row(session, item.outbox_id) if item.outbox_id is not None else None
    if outbox is None:
        raise InvalidTransitionError(
            f"work item {item.id} names no outbox row to retry", item_id=item.id
        )
    before, was = snapshot(item), outbox.status
    moved = q.requeue(session, [outbox.id], now=actor.now)
    payload = {"outbox_status": was, "requeued": bool(moved), "attempts": outbox.attempts}
    row = record(session, actor, item.id, "retry", payload, outbox_id=outbox.id)
    details = {**(item.details or {}), "resolution": resolution(actor, "retry", row)}
    close(session, actor, item, RESOLVED, details=details)
    entry = audit(session, actor, "retry", item, before, target=f"outbox:{outbox.id}")
    if moved:
        message = (
            f"outbox {outbox.id} is queued again; dead letter {item.id} resolved"
            " (it reopens if the ERP refuses the posting again)"
        )
    else:
        message = f"outbox {outbox.id} was already {was}: nothing re-queued; item resolved"
    return result(item, "retry", entry, message, row=row, outbox_id=outbox.id)


def ignore(
    session: Session, actor: Actor, item_id: int, *, note: str, expected_version: int | None
) -> ActionResult:
    """Close an item without posting (not our claim, a duplicate, a rejected request). An
    ignored write-off approval frees its denial for another decision; a denial whose write-off
    request still waits is refused (``require_no_pending_approval``)."""
    text = require_note(note, "ignore")
    item = ready(session, actor, item_id, "ignore", expected_version)
    require_no_pending_approval(session, item)
    before = snapshot(item)
    row = record(session, actor, item.id, "ignore", {"note": text})
    details = {**(item.details or {}), "resolution": resolution(actor, "ignore", row)}
    close(session, actor, item, IGNORED, details=details)
    origin = (item.details or {}).get("origin") if item.kind == APPROVAL else None
    if origin:
        requester = session.get(WorkItem, int(origin["work_item_id"]))
        if requester is not None and (requester.details or {}).get("pending_approval") == item.id:
            freed = {k: v for k, v in requester.details.items() if k != "pending_approval"}
            change(session, actor, requester, details=freed)
    entry = audit(session, actor, "ignore", item, before, note=text)
    return result(item, "ignore", entry, f"work item {item.id} ignored", row=row)


def reveal_phi(session: Session, actor: Actor, item_id: int, *, reason: str) -> RevealedPhi:
    """The unmasked identity behind an item, audited (the row says who, when and why, and
    never the identity itself)."""
    why = require_note(reason, "reveal_phi", "a reason")
    item = load_item(session, item_id)
    who = identity(session, item)
    entry = qe.append_audit(
        session,
        at=actor.now,
        operator=actor.operator,
        role=actor.role,
        action="reveal_phi",
        work_item_id=item.id,
        target=f"item:{item.id}",
        before=None,
        after=None,
        reason=why,
        note="",
    )
    return RevealedPhi(item_id=item.id, audit_id=entry.id, **who)
