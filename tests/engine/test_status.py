"""The dashboard read models, on SQLite and PostgreSQL, with an injected ``now``.

The engine runs for real on a slice of the committed samples (the RPG clinic's 837Ps and
277CAs, one 835); expected figures come from the manifest or from plain Python over the rows,
and ages and posting times are planted on the rows so every bucket edge is checked exactly.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import WorkItemKind
from claimsync_console.engine.status import Dashboard, dashboard, dashboard_json
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.store.models import ClaimPaymentRow, ClaimRow
from claimsync_console.store.models_engine import ClaimAck, OutboxEntry, PaymentMatch, WorkItem
from tests.engine.test_reconcile import (
    DEAD_LETTER_FILES,
    MANIFEST,
    NOW,
    ZERO,
    deliver,
    ledger,  # noqa: F401 - the fixture
    run_engine,
    sample_subset,
)

LABELS = ("0-2 days", "3-7 days", "8-21 days", "over 21 days")
OPEN = ("open", "in_progress")


def stages(board: Dashboard) -> dict[str, tuple[int, Decimal]]:
    return {s.stage: (s.count, s.amount) for s in board.stages}


def test_an_empty_store_shows_zeros_everywhere(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions() as session:
        board = dashboard(session, now=NOW, minutes=5)
    assert stages(board) == dict.fromkeys(
        ("billed", "acknowledged", "remitted", "matched", "posted", "in_exception"), (0, ZERO)
    )
    assert board.postings_per_minute == (0, 0, 0, 0, 0)
    assert board.outbox.depth == 0 and board.outbox.oldest_age is None
    assert [t.kind for t in board.queues] == [k.value for k in WorkItemKind]
    assert all(t.count == 0 and t.amount == ZERO for t in board.queues)
    assert [(b.label, b.count) for b in board.aging] == [(label, 0) for label in LABELS]
    assert board.adapters == () and board.aging_by_queue == {}


def test_stage_counts_queues_and_outbox_after_a_run(
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    run_engine(db_sessions, sample_subset(tmp_path, DEAD_LETTER_FILES))
    (check,) = [c for c in MANIFEST["checks"] if c["file"].endswith("835_BCB_RPG_0002.x12")]
    billed_files = [f for f in MANIFEST["files"] if f["path"].startswith("837/837P_RPG")]
    with db_sessions() as session:
        board = dashboard(session, now=NOW + timedelta(seconds=90))
        claims = {c.id: c.billed_amount for c in session.scalars(select(ClaimRow))}
        newest: dict[int, tuple[int, str]] = {}
        for ack in session.scalars(select(ClaimAck).where(ClaimAck.claim_id.is_not(None))):
            assert ack.claim_id is not None
            if ack.claim_id not in newest or ack.claim_status_id > newest[ack.claim_id][0]:
                newest[ack.claim_id] = (ack.claim_status_id, ack.state)
        accepted = [c for c, (_, state) in newest.items() if state == "accepted"]
        matched = session.execute(
            select(ClaimPaymentRow.paid)
            .join(PaymentMatch, PaymentMatch.claim_payment_id == ClaimPaymentRow.id)
            .where(PaymentMatch.status.in_(("matched", "reversal_linked")))
        ).all()
        items = session.scalars(select(WorkItem).where(WorkItem.state.in_(OPEN))).all()
        outbox = session.scalars(select(OutboxEntry)).all()
    assert len(claims) == sum(f["claims"] for f in billed_files)
    assert accepted and len(accepted) < len(claims)  # the samples plant 277CA rejections
    assert stages(board) == {
        "billed": (len(claims), sum(claims.values(), ZERO)),
        "acknowledged": (len(accepted), sum((claims[c] for c in accepted), ZERO)),
        "remitted": (check["claim_payments"], Decimal(check["paid_total"])),
        "matched": (len(matched), sum((p for (p,) in matched), ZERO)),
        "posted": (0, ZERO),
        "in_exception": (len(items), sum((i.amount for i in items), ZERO)),
    }
    tiles = {t.kind: (t.count, t.amount) for t in board.queues if t.count}
    counts = Counter(i.kind for i in items)
    dollars: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for item in items:
        dollars[item.kind] += item.amount
    assert tiles == {kind: (n, dollars[kind]) for kind, n in counts.items()}
    assert {"unmatched_remittance", "denial", "rejected_claim"} <= tiles.keys()

    assert board.outbox.depth == board.outbox.pending == len(outbox) > 0
    assert board.outbox.depth_amount == sum((r.amount for r in outbox), ZERO)
    assert board.outbox.oldest_queued_at == NOW
    assert board.outbox.oldest_age == timedelta(seconds=90)
    assert board.postings_per_minute == (0,) * 30

    data = dashboard_json(board)
    assert data["stages"]["remitted"] == {"count": 7, "amount": check["paid_total"]}
    assert data["outbox"]["oldest_age_seconds"] == 90
    assert isinstance(data["queues"]["denial"]["amount"], str)


def test_aging_buckets_follow_whole_days_from_now(
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    run_engine(db_sessions, sample_subset(tmp_path, ("RPG",)))  # the clinic's files: 10+ items
    ages = [  # (age, bucket): each edge from both sides
        (timedelta(0), "0-2 days"),
        (timedelta(days=3) - timedelta(seconds=1), "0-2 days"),
        (timedelta(days=3), "3-7 days"),
        (timedelta(days=8) - timedelta(seconds=1), "3-7 days"),
        (timedelta(days=8), "8-21 days"),
        (timedelta(days=22) - timedelta(seconds=1), "8-21 days"),
        (timedelta(days=22), "over 21 days"),
        (timedelta(days=400), "over 21 days"),
    ]
    now = NOW + timedelta(days=30)
    with db_sessions.begin() as session:
        ids = list(session.scalars(select(WorkItem.id).where(WorkItem.state.in_(OPEN))))
        assert len(ids) >= len(ages)
        planted: dict[str, Counter[str]] = defaultdict(Counter)
        amounts: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for n, item_id in enumerate(ids):
            age, label = ages[n % len(ages)]
            session.execute(
                update(WorkItem).where(WorkItem.id == item_id).values(created_at=now - age)
            )
            item = session.get(WorkItem, item_id)
            assert item is not None
            planted[item.kind][label] += 1
            planted["*"][label] += 1
            amounts[label] += item.amount
    with db_sessions() as session:
        board = dashboard(session, now=now)
    assert [b.label for b in board.aging] == list(LABELS)
    assert {b.label: b.count for b in board.aging} == {lb: planted["*"][lb] for lb in LABELS}
    assert {b.label: b.amount for b in board.aging} == {lb: amounts[lb] for lb in LABELS}
    for kind, buckets in board.aging_by_queue.items():
        assert {b.label: b.count for b in buckets} == {lb: planted[kind][lb] for lb in LABELS}
    assert set(board.aging_by_queue) == set(planted) - {"*"}


def test_sparkline_and_adapter_health_after_delivery(
    db_sessions: sessionmaker[Session],
    tmp_path: Path,
    ledger: LedgerAdapter,  # noqa: F811 - the fixture
) -> None:
    run_engine(db_sessions, sample_subset(tmp_path, DEAD_LETTER_FILES))
    report = deliver(db_sessions, ledger)
    assert report.posted > 5 and report.dead == 0
    with db_sessions() as session:
        board = dashboard(session, now=NOW, minutes=10)
        posted_payments = session.scalar(
            select(func.count(OutboxEntry.id)).where(OutboxEntry.kind.in_(("payment", "reversal")))
        )
    assert board.postings_per_minute == (0,) * 9 + (report.posted,)  # all posted at NOW
    assert stages(board)["posted"][0] == posted_payments
    assert board.outbox.depth == 0 and board.outbox.posted == report.posted
    (health,) = board.adapters
    assert (health.adapter, health.circuit_state, health.last_success_at) == (
        "ledger",
        "closed",
        NOW,
    )
    assert health.p50_ms is not None and health.p95_ms is not None
    assert health.p50_ms <= health.p95_ms and health.samples == report.posted

    # plant posting times at the window's edges: [now - 10 min, now] in ten one-minute buckets
    times = [
        NOW - timedelta(minutes=10),  # the first bucket's first instant
        NOW - timedelta(minutes=10, seconds=1),  # just outside
        NOW - timedelta(minutes=5),  # bucket 5
        NOW - timedelta(seconds=30),  # the last bucket
        NOW + timedelta(minutes=1),  # in the future: outside
    ]
    with db_sessions.begin() as session:
        ids = list(session.scalars(select(OutboxEntry.id).order_by(OutboxEntry.id)))
        for row_id, at in zip(ids, times, strict=False):
            session.execute(
                update(OutboxEntry).where(OutboxEntry.id == row_id).values(posted_at=at)
            )
    with db_sessions() as session:
        board = dashboard(session, now=NOW, minutes=10)
    expected = [1, 0, 0, 0, 0, 1, 0, 0, 0, 1 + report.posted - len(times)]
    assert list(board.postings_per_minute) == expected


def test_queue_tiles_count_open_and_in_progress_items_and_ignore_closed_ones(
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The tiles are read per (kind, state) pair: an in-progress item counts, and is the oldest
    when it is; a closed item, however old, is in no tile, no aging bucket and no stage."""
    run_engine(db_sessions, sample_subset(tmp_path, ("RPG",)))
    with db_sessions.begin() as session:
        denials = list(
            session.scalars(
                select(WorkItem).where(WorkItem.kind == "denial", WorkItem.state == "open")
            )
        )
        assert len(denials) >= 3
        taken, closed = denials[0], denials[1]
        session.execute(
            update(WorkItem)
            .where(WorkItem.id == taken.id)
            .values(state="in_progress", created_at=NOW - timedelta(days=40))
        )
        session.execute(
            update(WorkItem)
            .where(WorkItem.id == closed.id)
            .values(state="resolved", created_at=NOW - timedelta(days=90))
        )
        still_open = [d for d in denials if d.id != closed.id]
    with db_sessions() as session:
        board = dashboard(session, now=NOW)
        open_items = session.scalars(select(WorkItem).where(WorkItem.state.in_(OPEN))).all()
    (tile,) = [t for t in board.queues if t.kind == "denial"]
    assert tile.count == len(still_open)
    assert tile.amount == sum((d.amount for d in still_open), ZERO)
    assert tile.oldest == NOW - timedelta(days=40)
    (oldest,) = [b for b in board.aging_by_queue["denial"] if b.label == "over 21 days"]
    assert (oldest.count, oldest.amount) == (1, taken.amount)
    assert stages(board)["in_exception"] == (
        len(open_items),
        sum((i.amount for i in open_items), ZERO),
    )
