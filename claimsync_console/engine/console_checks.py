"""What the console checks before it opens an action's dialog: does the action apply to the
items at all (their kinds and states), and which write-off reason they share.

An analyst must not write a note, or confirm a count, only to be told that the action never
applied (an approve on an unmatched payment, a remap of several unmatched payments, a write-off
of a denial whose earlier write-off still waits for a supervisor). The kinds come from the
triage service's own table (``BULK_ACTIONS``), so the console holds no rule of its own; the
service still checks every item when it acts (the item may change meanwhile). Items are named
by their queues' titles (``item_detail.KIND_TITLES``), as the analyst sees them, never by kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import WorkItemKind, dollars
from claimsync_console.engine.item_detail import kind_title
from claimsync_console.engine.rules import RulesBook
from claimsync_console.engine.triage import BULK_ACTIONS
from claimsync_console.engine.triage_model import ACTIVE_STATES, WRITE_OFF_KINDS
from claimsync_console.store.queries_engine import WorkItemFilter, list_work_items
from claimsync_console.store.queries_queue import pending_approvals

UNMATCHED = WorkItemKind.UNMATCHED_REMITTANCE.value
WORK_ITEM_KINDS = frozenset(kind.value for kind in WorkItemKind)
CHUNK = 500  # ids per read: a big selection is never one huge IN list
#: Actions that close an item or write it off, which a waiting write-off request forbids.
HELD_BY_APPROVAL = ("write_off", "ignore")
#: Action names as nouns, where a sentence needs one (``write-off applies to Denials``).
NOUNS = {"write_off": "write-off"}


@dataclass(frozen=True, slots=True)
class MarkedItem:
    """An item as the checks see it. ``state`` is ``missing`` for an id that is gone;
    ``pending_approval`` the approval item its write-off request waits on, if one does."""

    id: int
    kind: str
    state: str
    carcs: tuple[str, ...] = ()
    pending_approval: int | None = None

    @classmethod
    def of(cls, item: dict[str, Any]) -> MarkedItem:
        """From an item's JSON (``item_detail``'s ``item``, with its ``details`` and its
        ``pending_approval``, which is set only while the approval is open)."""
        carcs = (item.get("details") or {}).get("carcs") or ()
        return cls(
            int(item["id"]), item["kind"], item["state"], tuple(map(str, carcs)),
            item.get("pending_approval"),
        )  # fmt: skip


def marked_items(sessions: sessionmaker[Session], item_ids: Sequence[int]) -> list[MarkedItem]:
    """The items' kinds, states, CARCs and waiting write-off requests, in the order given."""
    found: dict[int, MarkedItem] = {}
    with sessions() as session:
        for start in range(0, len(item_ids), CHUNK):
            chunk = tuple(item_ids[start : start + CHUNK])
            page = list_work_items(session, WorkItemFilter(ids=chunk), limit=len(chunk))
            asking = [row.id for row in page.items if row.kind in WRITE_OFF_KINDS]
            pending = pending_approvals(session, asking)
            for row in page.items:
                carcs = tuple(map(str, (row.details or {}).get("carcs") or ()))
                found[row.id] = MarkedItem(row.id, row.kind, row.state, carcs, pending.get(row.id))
    return [found.get(i) or MarkedItem(i, "", "missing") for i in item_ids]


def action_kinds(action: str, count: int) -> tuple[str, ...]:
    """The kinds a console action on ``count`` items applies to (empty: any kind): the
    service's bulk table, a remap of several items being a reprocess of mapping errors; a
    remap of one item also takes an unmatched payment (the analyst chooses its claim)."""
    kinds = BULK_ACTIONS.get("reprocess" if action == "remap" else action, ())
    if action == "remap" and count == 1:
        return (UNMATCHED, *kinds)
    return kinds


def action_refusal(action: str, items: Sequence[MarkedItem]) -> str | None:
    """Why ``action`` cannot go on ``items``, in one sentence, else None. ``reverse`` undoes an
    action on a closed item, so the console checks it against the item's actions instead."""
    if action == "reverse" or not items:
        return None
    kinds = action_kinds(action, len(items))
    verb = action.replace("_", " ")  # the key's own name: "remap", even for a reprocess
    wrong: dict[str, list[int]] = {}  # what is wrong ("" for a missing id, a kind, a state)
    waiting: dict[int, int] = {}  # item -> the approval its write-off request waits on
    for item in items:
        if item.state == "missing":
            wrong.setdefault("", []).append(item.id)
        elif kinds and item.kind not in kinds:
            wrong.setdefault(item.kind, []).append(item.id)
        elif item.state not in ACTIVE_STATES:
            wrong.setdefault(item.state, []).append(item.id)
        elif action in HELD_BY_APPROVAL and item.pending_approval is not None:
            waiting[item.id] = item.pending_approval
    if not wrong and not waiting:
        return None
    if len(items) == 1 and waiting:
        ((item_id, approval),) = waiting.items()
        return (
            f"Cannot {verb}: work item {item_id} has a write-off waiting for approval"
            f" (work item {approval}): approve or ignore that first."
        )
    whys = [_why(action, kinds, len(items), wrong)] if wrong else []
    if waiting:
        whys.append(f"approve or ignore {'that' if len(waiting) == 1 else 'those'} first")
    if len(items) == 1:
        return f"Cannot {verb}: work item {items[0].id} {_is(next(iter(wrong)), 1)}; {whys[0]}."
    parts = [f"{len(ids)} {_is(what, len(ids))} ({_ids(ids)})" for what, ids in wrong.items()]
    if waiting:
        have = "has" if len(waiting) == 1 else "have"
        pairs = [f"{i} → approval {a}" for i, a in waiting.items()]
        parts.append(f"{len(waiting)} {have} a write-off waiting for approval ({_ids(pairs)})")
    said = f"Cannot {verb} the {len(items)} marked items: {'; '.join(parts)}; {'; '.join(whys)}."
    if action == "remap" and any(item.kind == UNMATCHED for item in items):
        said += " A remap to a claim takes one item at a time."
    elif sum(map(len, wrong.values())) + len(waiting) < len(items):
        said += " Unmark those and try again."
    return said


def _why(action: str, kinds: Sequence[str], count: int, wrong: dict[str, list[int]]) -> str:
    """What the action needs: its queues (``write-off applies to Denials and Rejected
    claims``), else open items."""
    noun = NOUNS.get(action, action.replace("_", " "))
    if not any(what in WORK_ITEM_KINDS for what in wrong):
        return f"{noun} needs open or in_progress items"
    if action == "remap" and count > 1:
        return "a remap of several items applies to Mapping errors only (it reprocesses them)"
    return f"{noun} applies to {' and '.join(kind_title(k, 2) for k in kinds)}"


def common_carc(items: Sequence[MarkedItem], known: Sequence[str]) -> str | None:
    """The write-off reason every item shares (the first of each one's CARCs that the rules
    can write off), else None: a bulk write-off offers it, as the single-item dialog offers an
    item's own CARC."""
    first = {next((c for c in item.carcs if c in known), None) for item in items}
    return first.pop() if len(first) == 1 else None


def _is(what: str, count: int) -> str:
    """``is an Approval`` / ``are Denials`` / ``is written_off`` / ``is gone``."""
    verb = "is" if count == 1 else "are"
    if not what:
        return f"{verb} gone"
    if what not in WORK_ITEM_KINDS:
        return f"{verb} {what}"
    title = kind_title(what, count)
    if count > 1:
        return f"{verb} {title}"
    return f"{verb} {'an' if title[:1].lower() in 'aeiou' else 'a'} {title}"


def _ids(ids: Sequence[object], shown: int = 5) -> str:
    text = ", ".join(map(str, ids[:shown]))
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def write_off_outlook(rules: RulesBook, reason: str, role: str, count: int) -> str:
    """What a bulk write-off's confirmation names: the reason, and how many of the items go to
    a supervisor instead of posting, when the rules alone tell (no tier for the reason, or an
    unlimited one for the role: none; the role absent from the tiers: all). Otherwise it
    depends on each item's amount and earlier write-offs, which the console does not read for
    a selection, so the limit is named instead (the service applies it item by item)."""
    account = rules.write_offs.get(reason)
    said = f"Reason: {reason}" + (f" (account {account})." if account else ".")
    tiers = rules.tiers("write_off", reason)
    own = next((t for t in tiers if t.role == role), None)
    if not tiers or (own is not None and own.max_amount is None):
        return f"{said} None of the {count} items goes to approval."
    if own is None:
        return f"{said} All {count} items go to approval: a {role} may not write off {reason}."
    limit = own.max_amount
    assert limit is not None  # an unlimited tier returned above
    return (
        f"{said} Each item over {dollars(limit)} (the {role} limit for {reason}, earlier"
        " write-offs counted) goes to approval instead of posting."
    )
