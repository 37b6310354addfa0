"""Read models behind ``claimsync status`` and the console dashboard.

Every work-item and outbox figure is read through an index that holds only what it counts
(``store.queries_status``: the open items' entries, the waiting outbox rows, the last minutes'
postings), so the dashboard's queues stay fast with a million closed items behind them
(``benchmarks/bench_status.py``); Python only shapes the few rows that come back. ``now`` is
passed in, never read from the clock here, so a test (or a replay) sees exactly the ages and
buckets it expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.domain import ZERO, StatusCategoryClass, WorkItemKind
from claimsync_console.engine.breaker import BreakerStatus, status_of
from claimsync_console.store import queries_status as q
from claimsync_console.store.models import FILE_STATUSES


def store_summary(session: Session) -> dict[str, Any]:
    """What the store holds, JSON-ready (money as decimal strings). ``files`` and
    ``acknowledgements`` carry every status, 0 when none: a script reads ``files.quarantined``
    without first asking whether the key is there (docs/cli.md)."""
    claims, billed = q.claim_totals(session)
    payments, paid = q.claim_payment_totals(session)
    checks, payment_total = q.remittance_totals(session)
    acks = [c.value for c in StatusCategoryClass]
    return {
        "files": {**dict.fromkeys(FILE_STATUSES, 0), **q.source_file_counts(session)},
        "claims": claims,
        "billed_total": str(billed),
        "acknowledgements": {**dict.fromkeys(acks, 0), **q.claim_status_counts(session)},
        "remittances": checks,
        "payment_total": str(payment_total),
        "claim_payments": payments,
        "paid_total": str(paid),
    }


# -- the dashboard -------------------------------------------------------------------------------

STAGES = ("billed", "acknowledged", "remitted", "matched", "posted", "in_exception")
#: (youngest age in whole days, label); an item is in the last bucket whose age it reaches.
AGING_BUCKETS = ((0, "0-2 days"), (3, "3-7 days"), (8, "8-21 days"), (22, "over 21 days"))
SPARKLINE_MINUTES = 30
POSTED_KINDS = ("payment", "reversal")  # the "posted" stage: claim payments the ERP has taken


@dataclass(frozen=True, slots=True)
class StageCount:
    stage: str
    count: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class OutboxGauge:
    """``depth``: rows still to deliver (pending + in flight); ``oldest_age``: how long the
    oldest of them has waited, None when there is none."""

    pending: int
    in_flight: int
    posted: int
    dead: int
    depth: int
    depth_amount: Decimal
    oldest_queued_at: datetime | None
    oldest_age: timedelta | None


@dataclass(frozen=True, slots=True)
class QueueTile:
    """Open and in-progress items of one kind (every kind present, zero when empty)."""

    kind: str
    count: int
    amount: Decimal
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class AgingBucket:
    label: str
    count: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Dashboard:
    at: datetime
    stages: tuple[StageCount, ...]
    outbox: OutboxGauge
    postings_per_minute: tuple[int, ...]  # oldest minute first, the current minute last
    adapters: tuple[BreakerStatus, ...]
    queues: tuple[QueueTile, ...]
    aging: tuple[AgingBucket, ...]
    aging_by_queue: dict[str, tuple[AgingBucket, ...]]
    #: open write-off requests' dollars, which the queue tiles count twice (see ``_stages``)
    write_off_requests: Decimal = ZERO


def dashboard(session: Session, *, now: datetime, minutes: int = SPARKLINE_MINUTES) -> Dashboard:
    """Everything the dashboard shows, as of ``now`` (timezone-aware). Never commits."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if minutes < 1:
        raise ValueError("minutes must be at least 1")
    aging, by_queue = _aging(session, now)
    queues = _queues(session)
    outbox = q.outbox_kind_totals(session)
    requests = q.open_write_off_requests(session)
    return Dashboard(
        at=now,
        stages=_stages(session, queues, outbox, requests),
        outbox=_outbox(session, now, outbox),
        postings_per_minute=postings_per_minute(session, now=now, minutes=minutes),
        adapters=tuple(status_of(row) for row in q.adapter_rows(session)),
        queues=queues,
        aging=aging,
        aging_by_queue=by_queue,
        write_off_requests=requests,
    )


def _stages(
    session: Session,
    queues: tuple[QueueTile, ...],
    outbox: list[q.OutboxKindTotal],
    requests: Decimal,
) -> tuple[StageCount, ...]:
    """ "In exception" is the queue tiles added up, less the write-off requests' dollars (the
    item they would write off holds the same money, and is open too), and "posted" the outbox's
    posted payments and reversals: no second pass over the items or the outbox."""
    held = sum((t.amount for t in queues), ZERO) - requests
    in_exception = (sum(t.count for t in queues), held)
    posted = [t for t in outbox if t.status == "posted" and t.kind in POSTED_KINDS]
    figures = (
        q.claim_totals(session),
        q.acknowledged_totals(session),
        q.claim_payment_totals(session),
        q.matched_totals(session),
        (sum(t.count for t in posted), sum((t.cash for t in posted), ZERO)),
        in_exception,
    )
    return tuple(
        StageCount(stage, count, amount)
        for stage, (count, amount) in zip(STAGES, figures, strict=True)
    )


def _outbox(session: Session, now: datetime, totals: list[q.OutboxKindTotal]) -> OutboxGauge:
    """Counts from the index pass; dollars only for the rows still waiting (the gauge shows no
    posted dollars, and summing ``amount`` would read every posted row)."""
    counts = dict.fromkeys(("pending", "in_flight", "posted", "dead"), 0)
    for total in totals:
        counts[total.status] = counts.get(total.status, 0) + total.count
    waiting = q.waiting_amounts(session)
    oldest = q.oldest_waiting_posting(session)
    return OutboxGauge(
        pending=counts["pending"],
        in_flight=counts["in_flight"],
        posted=counts["posted"],
        dead=counts["dead"],
        depth=counts["pending"] + counts["in_flight"],
        depth_amount=waiting["pending"] + waiting["in_flight"],
        oldest_queued_at=oldest,
        oldest_age=max(now - oldest, timedelta(0)) if oldest is not None else None,
    )


def postings_per_minute(session: Session, *, now: datetime, minutes: int) -> tuple[int, ...]:
    """Rows posted in each of the last ``minutes`` minutes: bucket i covers
    [now - (minutes - i) min, now - (minutes - i - 1) min); a row posted exactly at ``now``
    counts in the last one."""
    start = now - timedelta(minutes=minutes)
    counts = [0] * minutes
    for at in q.posting_times(session, start, now):
        index = int((at - start).total_seconds() // 60)
        counts[min(max(index, 0), minutes - 1)] += 1
    return tuple(counts)


def _queues(session: Session) -> tuple[QueueTile, ...]:
    found = {
        t.kind: QueueTile(t.kind, t.count, t.amount, t.oldest) for t in q.open_queue_totals(session)
    }
    kinds = [k.value for k in WorkItemKind] + sorted(set(found) - {k.value for k in WorkItemKind})
    return tuple(found.get(kind, QueueTile(kind, 0, ZERO, None)) for kind in kinds)


def aging_cutoffs(now: datetime) -> list[tuple[datetime, str]]:
    """(created after, label), youngest bucket first: an item aged ``d`` whole days (floor of
    now - created_at) is in "0-2 days" for d < 3, and so on."""
    return [
        (now - timedelta(days=next_start), label)
        for (_, label), (next_start, _) in pairwise(AGING_BUCKETS)
    ]


def _aging(
    session: Session, now: datetime
) -> tuple[tuple[AgingBucket, ...], dict[str, tuple[AgingBucket, ...]]]:
    labels = [label for _, label in AGING_BUCKETS]
    rows = q.open_item_aging(session, aging_cutoffs(now), labels[-1])
    totals: dict[str, dict[str, list[Any]]] = {}
    for kind, label, count, amount in rows:
        for key in (kind, "*"):
            slot = totals.setdefault(key, {}).setdefault(label, [0, ZERO])
            slot[0] += count
            slot[1] += amount

    def buckets(key: str) -> tuple[AgingBucket, ...]:
        found = totals.get(key, {})
        return tuple(AgingBucket(lb, *found.get(lb, [0, ZERO])) for lb in labels)

    return buckets("*"), {kind: buckets(kind) for kind in sorted(set(totals) - {"*"})}


# -- JSON ----------------------------------------------------------------------------------------


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def dashboard_json(board: Dashboard) -> dict[str, Any]:
    """JSON-ready: money as decimal strings, times as ISO 8601 UTC, ages in whole seconds."""
    outbox = board.outbox
    age = outbox.oldest_age
    return {
        "at": board.at.isoformat(),
        "stages": {s.stage: {"count": s.count, "amount": str(s.amount)} for s in board.stages},
        "outbox": {
            "pending": outbox.pending,
            "in_flight": outbox.in_flight,
            "posted": outbox.posted,
            "dead": outbox.dead,
            "depth": outbox.depth,
            "depth_amount": str(outbox.depth_amount),
            "oldest_queued_at": _iso(outbox.oldest_queued_at),
            "oldest_age_seconds": int(age.total_seconds()) if age is not None else None,
        },
        "postings_per_minute": list(board.postings_per_minute),
        "adapters": [
            {
                "adapter": a.adapter,
                "circuit_state": a.circuit_state,
                "consecutive_failures": a.consecutive_failures,
                "last_success_at": _iso(a.last_success_at),
                "last_failure_at": _iso(a.last_failure_at),
                "opened_at": _iso(a.opened_at),
                "p50_ms": a.p50_ms,
                "p95_ms": a.p95_ms,
                "samples": a.samples,
            }
            for a in board.adapters
        ],
        "queues": {
            t.kind: {"count": t.count, "amount": str(t.amount), "oldest": _iso(t.oldest)}
            for t in board.queues
        },
        "aging": _aging_json(board.aging),
        "aging_by_queue": {k: _aging_json(v) for k, v in board.aging_by_queue.items()},
    }


def _aging_json(buckets: tuple[AgingBucket, ...]) -> dict[str, dict[str, Any]]:
    return {b.label: {"count": b.count, "amount": str(b.amount)} for b in buckets}
