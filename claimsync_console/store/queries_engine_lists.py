"""Work-item lists, counts and totals for queue screens and bulk actions (split from
``store.queries_engine``, which re-exports every name here). Like every store query, each takes
a Session and never commits.

Lists are keyset-paged on ``(created_at, id)``, which the ``(kind, state, created_at, id)`` index
serves at a million rows where OFFSET paging would read every skipped row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from claimsync_console.domain import TERMINAL_STATES, ZERO, WorkItemKind, WorkItemState
from claimsync_console.store.models_engine import WorkItem

# -- listing, counting, totals ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkItemFilter:
    """What a queue screen or a bulk action selects. Empty tuples mean "any"."""

    kinds: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    payer_id: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    text: str | None = None
    error_signature: str | None = None
    assigned_to: str | None = None
    remittance_id: int | None = None
    ids: tuple[int, ...] = ()

    @classmethod
    def open_items(cls, *kinds: WorkItemKind | str) -> WorkItemFilter:
        return cls(kinds=tuple(str(k) for k in kinds), states=OPEN_STATES)


OPEN_STATES = tuple(s.value for s in WorkItemState if s not in TERMINAL_STATES)


@dataclass(frozen=True, slots=True)
class PageCursor:
    created_at: datetime
    id: int


@dataclass(frozen=True, slots=True)
class WorkItemPage:
    items: list[WorkItem]
    next_cursor: PageCursor | None


def _where(query: Any, wanted: WorkItemFilter) -> Any:
    """``query`` is any SELECT over work_items (Any: Select's generics differ across 2.0/2.1)."""
    conditions: list[Any] = []
    if wanted.kinds:
        conditions.append(WorkItem.kind.in_(wanted.kinds))
    if wanted.states:
        conditions.append(WorkItem.state.in_(wanted.states))
    if wanted.payer_id is not None:
        conditions.append(WorkItem.payer_id == wanted.payer_id)
    if wanted.min_amount is not None:
        conditions.append(WorkItem.amount >= wanted.min_amount)
    if wanted.max_amount is not None:
        conditions.append(WorkItem.amount <= wanted.max_amount)
    if wanted.error_signature is not None:
        conditions.append(WorkItem.error_signature == wanted.error_signature)
    if wanted.assigned_to is not None:
        conditions.append(WorkItem.assigned_to == wanted.assigned_to)
    if wanted.remittance_id is not None:
        conditions.append(WorkItem.remittance_id == wanted.remittance_id)
    if wanted.ids:
        conditions.append(WorkItem.id.in_(wanted.ids))
    if wanted.text:
        needle = wanted.text.lower()
        conditions.append(
            or_(
                *(
                    func.lower(column).contains(needle, autoescape=True)
                    for column in (
                        WorkItem.patient_control_number,
                        WorkItem.trace_number,
                        WorkItem.payer_name,
                        WorkItem.payer_id,
                        WorkItem.error,
                    )
                )
            )
        )
    return query.where(*conditions)


def list_work_items(
    session: Session,
    wanted: WorkItemFilter = WorkItemFilter(),
    *,
    after: PageCursor | None = None,
    limit: int = 50,
) -> WorkItemPage:
    """One page, oldest first; pass ``next_cursor`` back for the next page."""
    query = _where(select(WorkItem), wanted)
    if after is not None:
        query = query.where(
            or_(
                WorkItem.created_at > after.created_at,
                and_(WorkItem.created_at == after.created_at, WorkItem.id > after.id),
            )
        )
    items = list(
        session.scalars(query.order_by(WorkItem.created_at, WorkItem.id).limit(limit + 1)).all()
    )
    more = len(items) > limit
    items = items[:limit]
    cursor = PageCursor(items[-1].created_at, items[-1].id) if more and items else None
    return WorkItemPage(items, cursor)


def count_work_items(session: Session, wanted: WorkItemFilter) -> tuple[int, Decimal]:
    """How many items a filter selects and their dollars: a bulk action's dry-run preview."""
    query = _where(select(func.count(WorkItem.id), func.sum(WorkItem.amount)), wanted)
    count, total = session.execute(query).one()
    return int(count), total if total is not None else ZERO


@dataclass(frozen=True, slots=True)
class QueueTotal:
    kind: str
    state: str
    count: int
    amount: Decimal


def queue_totals(session: Session, *, states: Sequence[str] = ()) -> list[QueueTotal]:
    """Counts and dollars per (kind, state), for the dashboard's queue tiles."""
    query = select(
        WorkItem.kind, WorkItem.state, func.count(WorkItem.id), func.sum(WorkItem.amount)
    )
    if states:
        query = query.where(WorkItem.state.in_(states))
    rows = session.execute(
        query.group_by(WorkItem.kind, WorkItem.state).order_by(WorkItem.kind, WorkItem.state)
    )
    return [QueueTotal(k, s, int(n), t if t is not None else ZERO) for k, s, n, t in rows]


@dataclass(frozen=True, slots=True)
class SignatureGroup:
    error_signature: str
    count: int
    amount: Decimal
    oldest: datetime


def signature_groups(
    session: Session, *, kind: str = WorkItemKind.DEAD_LETTER.value, limit: int = 50
) -> list[SignatureGroup]:
    """Open items grouped by error signature, biggest first: 4,000 identical failures are one
    line on the dead-letter screen."""
    count = func.count(WorkItem.id)
    rows = session.execute(
        select(
            WorkItem.error_signature,
            count,
            func.sum(WorkItem.amount),
            func.min(WorkItem.created_at),
        )
        .where(WorkItem.kind == kind, WorkItem.state.in_(OPEN_STATES))
        .group_by(WorkItem.error_signature)
        .order_by(count.desc(), WorkItem.error_signature)
        .limit(limit)
    )
    return [
        SignatureGroup(sig, int(n), total if total is not None else ZERO, oldest)
        for sig, n, total, oldest in rows
    ]
