"""Sandbox ERP benchmark: postings per second from the engine to the sandbox on loopback (#6).

    python benchmarks/bench_sandbox.py                    # 4000 postings per HTTP case
    python benchmarks/bench_sandbox.py --entries 2000 --engine-entries 2000

The sandbox runs as a child process (``claimsync erp-sandbox serve --port 0``), so server and
client do not share a GIL, exactly as a user would run it. Measured in the same run:

- ``ledger direct (FULL)``: the embedded ledger adapter, one fsync per entry: the floor;
- ``sandbox ledger direct``: the sandbox's ledger in-process (WAL, synchronous=NORMAL, one
  writer): the ceiling the HTTP server can reach;
- ``raw httpx``: bare ``httpx.Client.post`` of the same JSON, one thread: the HTTP baseline
  the REST adapter is compared with;
- ``rest adapter``: ``post_entry`` on 1 and 8 threads, and ``post_entries`` (100 per request);
- ``engine drain``: the real outbox worker (``engine.worker.drain``) with the REST adapter,
  store in a fresh SQLite file, on 1 and 4 worker threads: batched (one ``post_each`` call
  and one outcome transaction per 100 rows, ``engine.worker_batch``), and row by row (the
  same adapter with ``supports_batch`` turned off: the path adapters without batches take).

Goal (#6): at least 2,000 postings/s from the engine to the sandbox.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from _common import ROOT, engine_drain_rate, table, verdict

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.erp.rest import RestAdapter, entry_to_wire
from claimsync_console.erp.sandbox import open_sandbox_ledger

GOAL = 2000.0
_serial = itertools.count(1)
TODAY = datetime.now(UTC).date()


def entries(count: int, tag: str) -> list[JournalEntry]:
    """Distinct balanced payment entries on the default chart, dated today."""
    made = []
    for _ in range(count):
        n = next(_serial)
        paid = Decimal(50 + n % 900) + Decimal("0.25")
        made.append(
            JournalEntry(
                idempotency_key=f"bench-{tag}-{os.getpid()}-{n:08d}",
                entry_date=TODAY,
                description="835 claim payment",
                reference=f"TRN-{n:06d}",
                lines=(
                    JournalLine("1010", debit=paid, memo="cash"),
                    JournalLine("4100", debit=Decimal("20.00"), memo="CO-45"),
                    JournalLine("1230", credit=paid + Decimal("20.00"), memo="receivable"),
                ),
            )
        )
    return made


def rate(count: int, action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def start_sandbox(folder: Path) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", "from claimsync_console.cli.app import main; main()",
         "erp-sandbox", "serve", "--port", "0", "--ledger", str(folder / "sandbox.sqlite")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        env={**os.environ, "CLAIMSYNC_DATA_DIR": str(folder)},
    )  # fmt: skip
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def raw_httpx(url: str, batch: list[JournalEntry]) -> None:
    bodies = [(e.idempotency_key, json.dumps(entry_to_wire(e)).encode()) for e in batch]
    with httpx.Client(base_url=url) as client:
        for key, body in bodies:
            reply = client.post(
                "/entries",
                content=body,
                headers={"Idempotency-Key": key, "Content-Type": "application/json"},
            )
            assert reply.status_code == 201, reply.text


def threaded(adapter: RestAdapter, batch: list[JournalEntry], threads: int) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(adapter.post_entry, batch))


class RowByRowRest(RestAdapter):
    """The REST adapter as the worker sees an adapter that takes no batches."""

    capabilities = dataclasses.replace(RestAdapter.capabilities, supports_batch=False)


def engine_drain(url: str, folder: Path, count: int, workers: int, batched: bool = True) -> float:
    tag = f"{workers}{'b' if batched else 'r'}"
    kind = RestAdapter if batched else RowByRowRest
    adapter = kind({"base_url": url, "concurrency": max(8, workers)})
    return engine_drain_rate(
        folder / f"store-{tag}.sqlite", entries(count, f"engine{tag}"), adapter, workers
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=4000)
    parser.add_argument("--engine-entries", type=int, default=3000)
    parser.add_argument("--ledger-entries", type=int, default=150)
    args = parser.parse_args(argv)
    n = args.entries
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        folder = Path(tmp)
        results: list[tuple[str, float]] = []
        full = LedgerAdapter({"path": str(folder / "full.sqlite"), "bootstrap_year": TODAY.year})
        batch = entries(args.ledger_entries, "full")
        results.append(
            (
                "ledger direct (FULL, 1 fsync/entry)",
                rate(len(batch), lambda: [full.post_entry(e) for e in batch]),
            )
        )
        normal = open_sandbox_ledger(folder / "normal.sqlite")
        batch = entries(n, "normal")
        results.append(
            (
                "sandbox ledger direct (NORMAL)",
                rate(n, lambda: [normal.post_entry(e) for e in batch]),
            )
        )
        child, url = start_sandbox(folder)
        try:
            batch = entries(n, "raw")
            results.append(("raw httpx, 1 thread", rate(n, lambda: raw_httpx(url, batch))))
            adapter = RestAdapter({"base_url": url, "concurrency": 8})
            batch = entries(n, "rest1")
            results.append(
                (
                    "rest adapter post_entry, 1 thread",
                    rate(n, lambda: [adapter.post_entry(e) for e in batch]),
                )
            )
            batch = entries(n, "rest8")
            results.append(
                ("rest adapter post_entry, 8 threads", rate(n, lambda: threaded(adapter, batch, 8)))
            )
            batch = entries(n, "restb")
            results.append(
                (
                    "rest adapter post_entries (100/request)",
                    rate(n, lambda: adapter.post_entries(batch)),
                )
            )
            adapter.close()
            for workers in (1, 4):
                results.append(
                    (
                        f"engine drain batched, {workers} worker(s)",
                        engine_drain(url, folder, args.engine_entries, workers),
                    )
                )
            results.append(
                (
                    "engine drain row by row, 4 workers",
                    engine_drain(url, folder, args.engine_entries, 4, batched=False),
                )
            )
        finally:
            child.send_signal(signal.SIGINT)
            child.wait(timeout=10)
    raw = dict(results)["raw httpx, 1 thread"]
    rows = [[name, f"{value:,.0f}", f"{value / raw:.2f}x"] for name, value in results]
    print(table(["case", "postings/s", "vs raw httpx"], rows))
    best_engine = max(v for k, v in results if k.startswith("engine drain batched"))
    best_adapter = max(v for k, v in results if k.startswith("rest adapter"))
    for label, best in (("REST adapter", best_adapter), ("engine drain", best_engine)):
        print(f"{label} best: {best:,.0f}/s -> goal {GOAL:,.0f}/s {verdict(best >= GOAL)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
