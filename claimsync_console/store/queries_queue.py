"""Queue screens' reads: one keyset page of a queue, a capped count, dead letters by signature.

The console never holds a queue in memory: it asks for the rows after (or before) a key, in one
of five orders, each served by an index that starts ``(kind, state, <sort column>...)`` so a page
costs the same at a million rows as at a hundred. A queue shows two states (open and in
progress); ``state IN (...)`` would make the database sort the whole queue, so each state is read
on its own index range and the two short lists are merged here. The row key is a tuple of the
sort columns ending in ``id``, compared as a row value, which SQLite and PostgreSQL both seek on.
Only the columns a row shows are selected (never ``details``); the one detail a row shows, a
write-off request waiting for approval, is read afterwards for the page's ids alone
(``_with_pending``). Free text is looked up in the search index of ``queue_search`` (its
semantics are written there).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from claimsync_console.domain import ZERO
from claimsync_console.store import queue_search as qs
from claimsync_console.store.models_engine import WorkItem

#: Sort name -> the columns of its key, most significant first (``id`` always last).
SORT_KEYS: dict[str, tuple[Any, ...]] = {
    "age": (WorkItem.created_at, WorkItem.id),
    "payer": (WorkItem.payer_id, WorkItem.created_at, WorkItem.id),
    "claim": (WorkItem.patient_control_number, WorkItem.id),
    "amount": (WorkItem.amount, WorkItem.id),
    "error": (WorkItem.error_signature, WorkItem.created_at, WorkItem.id),
}
#: How many rows of a queue a free-text filter reads in display order before it gives up on
#: finding a page there (see ``_text_rows``).
TEXT_WINDOW = 5_000
#: Up to this many ids from the search index are joined with the queue and sorted; more make
#: the text "common", and a common text is looked for along the queue's order first.
CANDIDATE_CAP = 5_000
_CHUNK = 500  # ids per IN list
_WRITE_OFF_KINDS = ("denial", "rejected_claim")  # the kinds that can ask for a write-off
_ROW_COLUMNS = (
    WorkItem.id,
    WorkItem.kind,
    WorkItem.state,
    WorkItem.version,
    WorkItem.created_at,
    WorkItem.payer_id,
    WorkItem.payer_name,
    WorkItem.patient_control_number,
    WorkItem.amount,
    WorkItem.error,
    WorkItem.error_signature,
    WorkItem.assigned_to,
)


@dataclass(frozen=True, slots=True)
class QueueWhere:
    """One queue (a kind, in some states) narrowed by what the analyst typed."""

    kind: str
    states: tuple[str, ...]
    payer: str | None = None  # a payer id, matched upper-cased (ids are upper case)
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    text: str | None = None
    error_signature: str | None = None
    claim_prefix: str | None = None  # patient control number starts with (index-served)


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    kind: str
    state: str
    version: int
    created_at: datetime
    payer_id: str
    payer_name: str
    claim: str
    amount: Decimal
    error: str
    error_signature: str
    assigned_to: str | None
    #: the approval item of this item's write-off request, while that request waits
    pending_approval: int | None = None

    def key(self, sort: str) -> tuple[Any, ...]:
        """This row's position in ``sort`` order: pass it back as ``after`` or ``before``."""
        values = {
            "age": (self.created_at, self.id),
            "payer": (self.payer_id, self.created_at, self.id),
            "claim": (self.claim, self.id),
            "amount": (self.amount, self.id),
            "error": (self.error_signature, self.created_at, self.id),
        }
        return values[sort]


def _conditions(
    where: QueueWhere, dialect: str, *, text: bool = True, scan: bool = False
) -> list[Any]:
    """The filter as SQL. ``scan`` writes kind and state as expressions no index serves, so
    the database reads the table in storage order (see ``_scanned``)."""
    kind = WorkItem.kind + "" if scan else WorkItem.kind
    conditions: list[Any] = [kind == where.kind]
    if scan:
        conditions.append((WorkItem.state + "").in_(where.states))
    if where.payer:
        # One equality keeps the (kind, state, payer_id, created_at) index ordered.
        conditions.append(WorkItem.payer_id == where.payer.upper())
    if where.min_amount is not None:
        conditions.append(WorkItem.amount >= where.min_amount)
    if where.max_amount is not None:
        conditions.append(WorkItem.amount <= where.max_amount)
    if where.error_signature is not None:
        conditions.append(WorkItem.error_signature == where.error_signature)
    if where.claim_prefix:
        # a range, not LIKE: SQLite's LIKE ignores case and so cannot seek the index
        prefix = where.claim_prefix.upper()
        conditions.append(WorkItem.patient_control_number >= prefix)
        conditions.append(WorkItem.patient_control_number < prefix + "\U0010ffff")
    if text and where.text:
        if dialect == "postgresql":
            conditions.append(qs.pg_contains(where.text))  # the trigram index's expression
        else:
            fold = dialect != "sqlite"
            conditions.append(_contains(where.text, fold, lambda name: getattr(WorkItem, name)))
    return conditions


_TEXT_COLUMNS = qs.TEXT_COLUMNS


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _fold(session: Session) -> bool:
    """Whether "any case" needs lower(): SQLite's LIKE already ignores (ASCII) case, and its
    lower() folds only ASCII too, so there it costs a fifth of a scan for nothing."""
    return _dialect(session) != "sqlite"


def _contains(text: str, fold: bool, column: Callable[[str], Any]) -> Any:
    """Free text: contained (any case) in the claim, trace, payer or error."""
    if not fold:
        return or_(*(column(n).contains(text, autoescape=True) for n in _TEXT_COLUMNS))
    needle = text.lower()
    return or_(*(func.lower(column(n)).contains(needle, autoescape=True) for n in _TEXT_COLUMNS))


def _key_bound(columns: Sequence[Any], key: Sequence[Any]) -> Any:
    """``key`` as a row value, each element bound with its column's type (money as cents)."""
    return tuple_(
        *(bindparam(None, value, type_=c.type) for c, value in zip(columns, key, strict=True))
    )


def queue_rows(
    session: Session,
    where: QueueWhere,
    *,
    sort: str = "age",
    descending: bool = False,
    after: Sequence[Any] | None = None,
    before: Sequence[Any] | None = None,
    limit: int = 50,
) -> list[QueueRow]:
    """Up to ``limit`` rows in ``sort`` order (reversed with ``descending``) that come after
    ``after``; or, with ``before``, the ``limit`` rows just before it (still in display order:
    the previous page)."""
    columns = SORT_KEYS[sort]
    backwards = before is not None
    reverse = descending != backwards  # which way the index is walked
    bound = before if backwards else after
    if where.text:
        found = _text_rows(session, where, columns, bound, reverse, limit)
    else:
        found = [
            _fetch(session, _seek(where, state, columns, bound, reverse).limit(limit))
            for state in where.states
        ]
    merged = list(heapq.merge(*found, key=lambda r: r.key(sort), reverse=reverse))[:limit]
    if backwards:
        merged.reverse()
    return _with_pending(session, merged)


def _with_pending(session: Session, rows: list[QueueRow]) -> list[QueueRow]:
    """The page's rows with their waiting write-off requests, read for the page's ids only:
    the page's own query may read thousands of rows (a window, a scan), and the JSON would be
    parsed (on PostgreSQL de-TOASTed) for each. Only denials and rejected claims ask."""
    pending = pending_approvals(session, [r.id for r in rows if r.kind in _WRITE_OFF_KINDS])
    return [replace(r, pending_approval=pending[r.id]) if r.id in pending else r for r in rows]


def pending_approvals(session: Session, item_ids: Collection[int]) -> dict[int, int]:
    """Item id -> the approval item its write-off request (``details.pending_approval``) waits
    on, for those of ``item_ids`` whose approval is still open or in progress: one query, the
    approval found by primary key from each item's JSON."""
    approval, wanted = aliased(WorkItem), list(dict.fromkeys(item_ids))
    found: dict[int, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = session.execute(
            select(WorkItem.id, approval.id)
            .join(approval, approval.id == WorkItem.details["pending_approval"].as_integer())
            .where(
                WorkItem.id.in_(wanted[start : start + _CHUNK]),
                approval.state.in_(("open", "in_progress")),
            )
        )
        found.update({int(item_id): int(waits_on) for item_id, waits_on in rows})
    return found


def _text_rows(
    session: Session,
    where: QueueWhere,
    columns: Sequence[Any],
    bound: Sequence[Any] | None,
    reverse: bool,
    limit: int,
) -> list[list[QueueRow]]:
    """Free text. SQLite: rare text (at most CANDIDATE_CAP ids from the index): those rows,
    filtered exactly and sorted. Common text: a page is almost always among the next
    TEXT_WINDOW rows in display order; if not, every candidate the index offers. Text under
    three characters has no trigram: the window, then the whole table in storage order.
    PostgreSQL: the window, then ``_scanned``, whose ILIKE only the trigram index can serve
    (left to itself the planner walks the queue's order, expecting matches the text's
    frequency elsewhere predicts: 1.2 s at 1M items for a word of other queues only)."""
    if _dialect(session) == "postgresql":
        found = _windowed(session, where, columns, bound, reverse, limit)
        if found is None:
            found = _scanned(session, where, columns, bound, reverse, limit)
        return found
    found_by = qs.lookup(session, where.text or "", CANDIDATE_CAP, where.kind)
    if found_by.rare and found_by.query is not None:
        return _among(session, where, found_by.query, columns, bound, reverse, limit)
    found = _windowed(session, where, columns, bound, reverse, limit)
    if found is not None:
        return found
    if found_by.query is not None:
        return _among(session, where, found_by.query, columns, bound, reverse, limit)
    return _scanned(session, where, columns, bound, reverse, limit)


def _among(
    session: Session,
    where: QueueWhere,
    query: str,
    columns: Sequence[Any],
    bound: Sequence[Any] | None,
    reverse: bool,
    limit: int,
) -> list[list[QueueRow]]:
    """The rows the search index offers, filtered exactly, in key order. ``scan`` keeps the
    planner from walking the queue's index and probing the search index row by row."""
    query_ids = qs.candidate_ids(query)
    conditions = _conditions(where, _dialect(session), scan=True)
    select_rows = select(*_ROW_COLUMNS).where(WorkItem.id.in_(query_ids), *conditions)
    if bound is not None:
        row_value, other = tuple_(*columns), _key_bound(columns, bound)
        select_rows = select_rows.where(row_value < other if reverse else row_value > other)
    order = [c.desc() for c in columns] if reverse else list(columns)
    return [_fetch(session, select_rows.order_by(*order).limit(limit))]


def _seek(
    where: QueueWhere,
    state: str,
    columns: Sequence[Any],
    bound: Sequence[Any] | None,
    reverse: bool,
) -> Any:
    """One state's rows from ``bound`` on, in key order: a seek on the sort's index (any free
    text is applied around it, by ``_windowed``)."""
    # the dialect does not matter here: text is either absent or left to _windowed
    conditions = _conditions(where, "", text=False)
    query = select(*_ROW_COLUMNS).where(*conditions, WorkItem.state == state)
    if bound is not None:
        row_value, other = tuple_(*columns), _key_bound(columns, bound)
        query = query.where(row_value < other if reverse else row_value > other)
    return query.order_by(*([c.desc() for c in columns] if reverse else columns))


def _fetch(session: Session, query: Any) -> list[QueueRow]:
    return [_row(r) for r in session.execute(query)]


def _windowed(
    session: Session,
    where: QueueWhere,
    columns: Sequence[Any],
    bound: Sequence[Any] | None,
    reverse: bool,
    limit: int,
) -> list[list[QueueRow]] | None:
    """Each state's first ``limit`` matches among its next TEXT_WINDOW rows, or None when a
    state's window ran out before a page was found (its rows go on past the window)."""
    found: list[list[QueueRow]] = []
    for state in where.states:
        seek = _seek(where, state, columns, bound, reverse)
        window = seek.add_columns(WorkItem.trace_number).limit(TEXT_WINDOW).subquery()
        order = [window.c[c.key] for c in columns]
        rows = _fetch(
            session,
            select(*(window.c[c.key] for c in _ROW_COLUMNS))
            .where(_contains(where.text or "", _fold(session), window.c.__getitem__))
            .order_by(*([c.desc() for c in order] if reverse else order))
            .limit(limit),
        )
        if len(rows) < limit:
            seen = session.scalar(select(func.count()).select_from(window)) or 0
            if seen >= TEXT_WINDOW:
                return None
        found.append(rows)
    return found


def _scanned(
    session: Session,
    where: QueueWhere,
    columns: Sequence[Any],
    bound: Sequence[Any] | None,
    reverse: bool,
    limit: int,
) -> list[list[QueueRow]]:
    """Every state at once, reading the table in storage order; the matches are sorted."""
    query = select(*_ROW_COLUMNS).where(*_conditions(where, _dialect(session), scan=True))
    if bound is not None:
        row_value, other = tuple_(*columns), _key_bound(columns, bound)
        query = query.where(row_value < other if reverse else row_value > other)
    order = [c.desc() for c in columns] if reverse else list(columns)
    return [_fetch(session, query.order_by(*order).limit(limit))]


def _row(row: Any) -> QueueRow:
    return QueueRow(
        id=row.id,
        kind=row.kind,
        state=row.state,
        version=row.version,
        created_at=row.created_at,
        payer_id=row.payer_id,
        payer_name=row.payer_name,
        claim=row.patient_control_number,
        amount=row.amount,
        error=row.error,
        error_signature=row.error_signature,
        assigned_to=row.assigned_to,
    )


def _count_conditions(session: Session, where: QueueWhere) -> list[Any]:
    """Rare free text on SQLite counts the rows the search index offers; common or short text
    reads the table in storage order (no row order is needed, and the cap comes soon). Other
    filters, and PostgreSQL's ILIKE (counted only past a full first page, so the text is not
    rare in the queue), count along their index."""
    dialect = _dialect(session)
    if where.text and dialect != "postgresql":
        conditions = _conditions(where, dialect, scan=True)
        found_by = qs.lookup(session, where.text, CANDIDATE_CAP, where.kind)
        if found_by.rare and found_by.query is not None:
            conditions.append(WorkItem.id.in_(qs.candidate_ids(found_by.query)))
        return conditions
    return [*_conditions(where, dialect), WorkItem.state.in_(where.states)]


def capped_count(session: Session, where: QueueWhere, cap: int) -> int:
    """How many rows match, counting no further than ``cap`` (a million-row queue says
    "10,000+" in a few milliseconds instead of counting every row on each keystroke)."""
    inner = select(WorkItem.id).where(*_count_conditions(session, where)).limit(cap).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    error_signature: str
    example: str
    count: int
    amount: Decimal
    oldest: datetime


def error_groups(session: Session, where: QueueWhere, *, limit: int = 200) -> list[ErrorGroup]:
    """The queue's rows grouped by error signature, biggest group first, with one example
    message each: one bad mapping behind 4,000 failures is one line."""
    count = func.count(WorkItem.id)
    rows = session.execute(
        select(
            WorkItem.error_signature,
            func.max(WorkItem.error),
            count,
            func.sum(WorkItem.amount),
            func.min(WorkItem.created_at),
        )
        .where(*_conditions(where, _dialect(session)), WorkItem.state.in_(where.states))
        .group_by(WorkItem.error_signature)
        .order_by(count.desc(), WorkItem.error_signature)
        .limit(limit)
    )
    return [
        ErrorGroup(sig, example or "", int(n), total if total is not None else ZERO, oldest)
        for sig, example, n, total, oldest in rows
    ]
