"""Dashboard benchmark: ``engine.status.dashboard`` on a store holding a million work items.

    python benchmarks/bench_status.py                     # 1M work items, 1M outbox rows
    python benchmarks/bench_status.py --items 200000 --repeat 3

The store (SQLite, built once and cached under ``benchmarks/.data/``) holds ``--items`` work
items, 3% of them open or in progress and the rest closed, spread over every kind and over 60
days, and as many outbox rows, nearly all posted. Claims and payments are left empty: the
dashboard's stage counts over them are plain aggregates and are not what this measures.

Reported, each the median of ``--repeat`` runs: the whole ``dashboard()``, its work-item part
(queue tiles, aging, the "in exception" stage) and its outbox part, against a baseline measured
in the same run on the same file: ``SELECT count(*), sum(amount) FROM work_items``, the full
scan a queue count would be without an index. The work-item part should be a small fraction
of it, because it reads only the open items' index entries. ``--plans`` prints SQLite's plan of
every statement the dashboard runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA_DIR = Path(__file__).resolve().parent / ".data"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OPEN_SHARE = 0.03
BATCH = 20_000


def build(path: Path, items: int) -> None:
    """A migrated SQLite store with ``items`` work items and as many outbox rows."""
    from sqlalchemy import insert

    from claimsync_console.store import db
    from claimsync_console.store.models_engine import WORK_ITEM_KINDS, OutboxEntry, WorkItem

    engine = db.make_engine(db.default_sqlite_url(path))
    db.upgrade_to_head(engine)
    rng = random.Random(7)
    closed = ("resolved", "resolved", "resolved", "ignored", "written_off")
    with engine.begin() as connection:
        for start in range(0, items, BATCH):
            rows, outbox = [], []
            for n in range(start, min(start + BATCH, items)):
                is_open = rng.random() < OPEN_SHARE
                created = NOW - timedelta(minutes=rng.randrange(60 * 24 * 60))
                amount = Decimal(rng.randrange(1, 500_000)) / 100
                rows.append({
                    "kind": rng.choice(WORK_ITEM_KINDS),
                    "state": rng.choice(("open", "in_progress")) if is_open else rng.choice(closed),
                    "version": 1, "payer_id": f"P{n % 40}", "payer_name": "", "amount": amount,
                    "patient_control_number": f"PCN{n}", "trace_number": "", "error": "",
                    "error_signature": "", "details": {}, "source_key": f"bench:{n}",
                    "created_at": created, "updated_at": created,
                })  # fmt: skip
                status = "posted" if rng.random() > 0.002 else rng.choice(("pending", "dead"))
                outbox.append({
                    "idempotency_key": f"bench:{n}", "kind": "payment", "entry": {},
                    "amount": amount, "cash_amount": amount, "trace_number": f"T{n % 5000}",
                    "status": status, "attempts": 1, "next_attempt_at": created,
                    "last_error": "", "created_at": created,
                    "posted_at": created + timedelta(seconds=5) if status == "posted" else None,
                })  # fmt: skip
            connection.execute(insert(WorkItem), rows)
            connection.execute(insert(OutboxEntry), outbox)
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()


def median_seconds(repeat: int, call: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plans", action="store_true", help="print each query's plan")
    parser.add_argument(
        "--before-0005", action="store_true", help="measure a store not yet upgraded to 0005"
    )
    args = parser.parse_args(argv)

    from sqlalchemy import event, text

    from claimsync_console.engine import status
    from claimsync_console.store import db
    from claimsync_console.store import queries_status as q

    DATA_DIR.mkdir(exist_ok=True)
    path = DATA_DIR / f"status-{args.items}.sqlite"
    if not path.exists():
        print(f"building {path} ({args.items} work items) ...", flush=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        build(partial, args.items)
        partial.rename(path)
    engine = db.make_engine(db.default_sqlite_url(path))
    if args.before_0005:
        print("measuring WITHOUT migration 0005 (no (status, posted_at) index)")
    else:
        db.upgrade_to_head(engine)  # a store built before a new index gets it here
    sessions = db.session_factory(engine)
    statements: list[tuple[str, Any]] = []
    with sessions() as session:
        board = status.dashboard(session, now=NOW)  # warm the page cache once
        open_items = sum(t.count for t in board.queues)

        def scan() -> Any:
            return session.execute(text("SELECT count(*), sum(amount) FROM work_items")).one()

        def items_part() -> Any:
            return q.open_queue_totals(session), status._aging(session, NOW)

        figures = {
            "baseline: full scan of work_items": median_seconds(args.repeat, scan),
            "dashboard()": median_seconds(args.repeat, lambda: status.dashboard(session, now=NOW)),
            "  work items (queues, aging)": median_seconds(args.repeat, items_part),
            "  outbox (one index pass + gauge)": median_seconds(
                args.repeat,
                lambda: status._outbox(session, NOW, q.outbox_kind_totals(session)),
            ),
            "  postings per minute": median_seconds(
                args.repeat, lambda: status.postings_per_minute(session, now=NOW, minutes=30)
            ),
            "  other stages (claims, matches)": median_seconds(
                args.repeat, lambda: status._stages(session, board.queues, [])
            ),
        }

        def record(conn: Any, cursor: Any, sql: str, params: Any, *rest: Any) -> None:
            statements.append((sql, params))

        event.listen(engine, "before_cursor_execute", record)
        status.dashboard(session, now=NOW)
        event.remove(engine, "before_cursor_execute", record)
        raw = session.connection().connection.driver_connection
        assert raw is not None
        plans = [(sql, raw.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
                 for sql, params in statements]  # fmt: skip
    engine.dispose()
    base = figures["baseline: full scan of work_items"]
    print(f"{args.items} work items ({open_items} open), median of {args.repeat}:")
    for name, seconds in figures.items():
        print(f"  {name:<36} {seconds * 1000:9.1f} ms   {seconds / base:6.2f}x baseline")
    if args.plans:
        for sql, rows in plans:
            print(" ".join(sql.split())[:160])
            for row in rows:
                print(f"    {row[-1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
