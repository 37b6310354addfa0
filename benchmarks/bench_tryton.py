"""Tryton adapter throughput: moves posted per second, one at a time versus batched (issue #6).

    python benchmarks/bench_tryton.py                      # SQLite, 200 single + 2000 batched
    python benchmarks/bench_tryton.py --backend postgres   # needs CLAIMSYNC_TEST_POSTGRES_URL
    python benchmarks/bench_tryton.py --single 100 --batched 5000 --batch-size 200
    python benchmarks/bench_tryton.py --backend postgres --lines 2 --batch-size 250 --parallel 2

A real trytond is started on 127.0.0.1 on a copy of the bootstrapped template the tests use
(built by trytond-admin on the first run, then kept in the user's cache folder). Both modes go
through the same adapter and the same idempotency search; the baseline is one-at-a-time
measured in the same run, and the goal is >= 200 moves/s batched (one at a time is ~25/s on
an idle machine; the load average is printed because a busy one scales both down).
``--parallel N`` starts N trytond processes on the database and adds a row with the adapter's
``parallel_requests=N`` sending chunks to them concurrently (PostgreSQL; see docs/tryton.md),
and a row with the real outbox worker: N engine workers draining a queue of ``--batched``
entries through one shared adapter, each worker's requests on its own trytond.
``PYTHONOPTIMIZE=1 python benchmarks/bench_tryton.py ...`` runs the trytonds with ``-O`` too
(they inherit the environment): trytond asserts over every record's id list on each record it
instantiates, which makes a batch's cost grow with its square (docs/tryton.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from _common import ROOT, engine_drain_rate, table, verdict

sys.path.insert(0, str(ROOT))

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.erp.tryton import TrytonAdapter
from tests.erp.tryton_server import TrytonTemplates, template_cache_dir

GOAL = 200.0


def entries(prefix: str, count: int, lines: int = 4) -> list[JournalEntry]:
    """The primer's payment shape (cash and two adjustments against the receivable), or with
    ``lines=2`` a plain payment; trytond's cost grows with the number of lines."""
    out = []
    for n in range(count):
        paid = Decimal(50 + n % 100).quantize(Decimal("0.01"))
        if lines == 2:
            shape: tuple[JournalLine, ...] = (
                JournalLine("1010", debit=paid, memo="cash"),
                JournalLine("1200", credit=paid, memo="receivable"),
            )
        else:
            shape = (
                JournalLine("1010", debit=paid, memo="cash"),
                JournalLine("4100", debit=Decimal("20.00"), cost_centre="CC100-NMC", memo="CO-45"),
                JournalLine("1300", debit=Decimal("10.00"), memo="PR-2"),
                JournalLine("1200", credit=paid + Decimal("30.00"), memo="receivable"),
            )
        out.append(JournalEntry(f"{prefix}-{n:07d}", date(2024, 3, 15), "835 payment", shape))
    return out


def rate(adapter: TrytonAdapter, batch: list[JournalEntry], batched: bool) -> float:
    started = time.perf_counter()
    if batched:
        results = adapter.post_entries(batch)
    else:
        results = [adapter.post_entry(entry) for entry in batch]
    elapsed = time.perf_counter() - started
    assert all(result.created for result in results), "benchmark keys must be fresh"
    return len(batch) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--single", type=int, default=200, help="moves posted one at a time")
    parser.add_argument("--batched", type=int, default=2000, help="moves posted in batches")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lines", type=int, choices=(2, 4), default=4, help="lines per move")
    parser.add_argument("--parallel", type=int, default=1, help="trytond processes and requests")
    args = parser.parse_args()
    postgres_url = os.environ.get("CLAIMSYNC_TEST_POSTGRES_URL")
    if args.backend == "postgres" and not postgres_url:
        parser.error("--backend postgres needs CLAIMSYNC_TEST_POSTGRES_URL")
    with tempfile.TemporaryDirectory(prefix="bench-tryton-") as work:
        templates = TrytonTemplates(Path(work), postgres_url, cache_dir=template_cache_dir())
        print(f"preparing trytond on {args.backend} (first run builds the template) ...")
        try:
            with templates.serve_copy(args.backend, "bench", args.parallel) as server:
                # the baseline rows use one process, even when --parallel started several
                options = server.options(batch_size=args.batch_size)
                adapter = TrytonAdapter({**options, "url": server.url})
                assert adapter.health().ok
                adapter.post_entries(entries("warmup", 20))  # caches, connection, session
                run = str(time.time_ns())
                single_batch = entries(f"single-{run}", args.single, args.lines)
                single = rate(adapter, single_batch, batched=False)
                batched_batch = entries(f"batch-{run}", args.batched, args.lines)
                batched = rate(adapter, batched_batch, batched=True)
                adapter.close()
                if args.parallel > 1:
                    many = server.adapter(
                        batch_size=args.batch_size, parallel_requests=args.parallel
                    )
                    many.post_entries(entries("warmup-p", 20))
                    par_batch = entries(f"par-{run}", args.batched, args.lines)
                    par = rate(many, par_batch, batched=True)
                    many.close()
                    engine = engine_drain_rate(
                        Path(work) / "engine.sqlite",
                        entries(f"engine-{run}", args.batched, args.lines),
                        TrytonAdapter(server.options(batch_size=args.batch_size)),
                        args.parallel,
                        args.batch_size,
                    )
        finally:
            templates.cleanup()
    rows = [
        ["one at a time", str(args.single), f"{single:.0f}", "1.0x"],
        [
            f"batched ({args.batch_size}/call)",
            str(args.batched),
            f"{batched:.0f}",
            f"{batched / single:.1f}x",
        ],
    ]
    if args.parallel > 1:
        label = f"{args.parallel} processes, parallel_requests={args.parallel}"
        rows.append([label, str(args.batched), f"{par:.0f}", f"{par / single:.1f}x"])
        label = f"engine: {args.parallel} outbox workers, {args.parallel} processes"
        rows.append([label, str(args.batched), f"{engine:.0f}", f"{engine / single:.1f}x"])
        batched = max(batched, par)
    optimized = " (trytond -O)" if os.environ.get("PYTHONOPTIMIZE") else ""
    print(
        f"{args.backend}{optimized}, {args.lines} lines per move, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(table(["mode", "moves", "moves/s", "vs one at a time"], rows))
    print(f"goal: >= {GOAL:.0f} moves/s batched: {verdict(batched >= GOAL)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
