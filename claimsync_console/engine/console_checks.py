"""What the console checks before it opens an action's dialog: does the action apply to the
items at all (their kinds and states), and which write-off reason they share.

An analyst must not write a note, or confirm a count, only to be told that the action never
applied (an approve on an unmatched payment, a remap of several unmatched payments). The kinds
come from the triage service's own table (``BULK_ACTIONS``), so the console holds no rule of
its own; the service still checks every item when it acts (the item may change meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import WorkItemKind
from claimsync_console.engine.triage import BULK_ACTIONS
from claimsync_console.engine.triage_model import ACTIVE_STATES
from claimsync_console.store.queries_engine import WorkItemFilter, list_work_items

UNMATCHED = WorkItemKind.UNMATCHED_REMITTANCE.value
WORK_ITEM_KINDS = frozenset(kind.value for kind in WorkItemKind)
CHUNK = 500  # ids per read: a big selection is never one huge IN list


@dataclass(frozen=True, slots=True)
class MarkedItem:
    """An item as the checks see it. ``state`` is ``missing`` for an id that is gone."""

    id: int
    kind: str
    state: str
    carcs: tuple[str, ...] = ()

    @classmethod
    def of(cls, item: dict[str, Any]) -> MarkedItem:
        """From an item's JSON (``item_detail``'s ``item``, with its ``details``)."""
        carcs = (item.get("details") or {}).get("carcs") or ()
        return cls(int(item["id"]), item["kind"], item["state"], tuple(map(str, carcs)))


def marked_items(sessions: sessionmaker[Session], item_ids: Sequence[int]) -> list[MarkedItem]:
    """The items' kinds, states and CARCs, in the order given."""
    found: dict[int, MarkedItem] = {}
    with sessions() as session:
        for start in range(0, len(item_ids), CHUNK):
            chunk = tuple(item_ids[start : start + CHUNK])
            page = list_work_items(session, WorkItemFilter(ids=chunk), limit=len(chunk))
            for row in page.items:
                carcs = tuple(map(str, (row.details or {}).get("carcs") or ()))
                found[row.id] = MarkedItem(row.id, row.kind, row.state, carcs)
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
    verb = ("reprocess" if action == "remap" and len(items) > 1 else action).replace("_", " ")
    wrong: dict[str, list[int]] = {}  # what is wrong ("" for a missing id, a kind, a state)
    for item in items:
        if item.state == "missing":
            wrong.setdefault("", []).append(item.id)
        elif kinds and item.kind not in kinds:
            wrong.setdefault(item.kind, []).append(item.id)
        elif item.state not in ACTIVE_STATES:
            wrong.setdefault(item.state, []).append(item.id)
    if not wrong:
        return None
    if any(what in WORK_ITEM_KINDS for what in wrong):
        why = f"{verb} applies to {' or '.join(kinds)} items"
    else:
        why = f"{verb} needs open or in_progress items"
    if len(items) == 1:
        return f"Cannot {verb}: work item {items[0].id} {_is(next(iter(wrong)), 1)}; {why}."
    parts = [f"{len(ids)} {_is(what, len(ids))} ({_ids(ids)})" for what, ids in wrong.items()]
    said = f"Cannot {verb} the {len(items)} marked items: {'; '.join(parts)}; {why}."
    if action == "remap" and any(item.kind == UNMATCHED for item in items):
        said += " A remap to a claim takes one item at a time."
    elif sum(map(len, wrong.values())) < len(items):
        said += " Unmark those and try again."
    return said


def common_carc(items: Sequence[MarkedItem], known: Sequence[str]) -> str | None:
    """The write-off reason every item shares (the first of each one's CARCs that the rules
    can write off), else None: a bulk write-off offers it, as the single-item dialog offers an
    item's own CARC."""
    first = {next((c for c in item.carcs if c in known), None) for item in items}
    return first.pop() if len(first) == 1 else None


def _is(what: str, count: int) -> str:
    """``is an approval item`` / ``are denial items`` / ``is written_off`` / ``is gone``."""
    verb = "is" if count == 1 else "are"
    if not what:
        return f"{verb} gone"
    if what not in WORK_ITEM_KINDS:
        return f"{verb} {what}"
    if count > 1:
        return f"{verb} {what} items"
    return f"{verb} {'an' if what[:1] in 'aeiou' else 'a'} {what} item"


def _ids(ids: list[int], shown: int = 5) -> str:
    text = ", ".join(map(str, ids[:shown]))
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
