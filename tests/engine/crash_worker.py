"""An outbox worker process that kills itself (SIGKILL) at a chosen point, for test_crash.py.

Also the small fixtures the outbox tests share: deterministic balanced entries against the
ledger's DEFAULT_CHART, the ledger itself, and the balances a set of entries must produce.

Run as ``python -m tests.engine.crash_worker --db URL --ledger PATH`` from the repository root
(the test also forks it, calling :func:`main`, to skip the interpreter's start-up cost).
``CLAIMSYNC_CRASH_POINT`` picks where it dies and ``CLAIMSYNC_CRASH_AFTER=N`` on which
occurrence (1-based) of that point:

* ``claimed``  - the batch is leased, nothing posted yet;
* ``calling``  - just before ``post_entry`` for a row;
* ``called``   - the ERP has answered, the outcome is not recorded yet;
* ``in_mark``  - inside the outcome transaction, its writes flushed, before COMMIT;
* ``recorded`` - the outcome is committed.

Without a crash point it drains to the end and prints its report as JSON on stdout. It is
killed with SIGKILL (not ``sys.exit``): no finally block, no atexit, no rollback runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.erp.ledger import LedgerAdapter

ENTRY_YEAR = 2026
DEBIT_ACCOUNTS = ("4100", "4120", "1300")
RECEIVABLES = ("1210", "1220", "1230")
CASH = "1010"
CRASH_POINTS = ("claimed", "calling", "called", "in_mark", "recorded")


def sample_entry(number: int, *, key_prefix: str = "crash") -> JournalEntry:
    """A claim-payment-shaped entry whose amounts vary with ``number`` (cents included)."""
    paid = Decimal(number * 7919 % 90_000 + 101).scaleb(-2)
    adjusted = Decimal(number * 104_729 % 40_000 + 1).scaleb(-2)
    return JournalEntry(
        idempotency_key=f"{key_prefix}-{number:05d}",
        entry_date=date(ENTRY_YEAR, number % 12 + 1, number % 28 + 1),
        description=f"test payment {number}",
        reference=f"TRN{number % 7:04d}",
        lines=(
            JournalLine(CASH, debit=paid, memo="cash"),
            JournalLine(DEBIT_ACCOUNTS[number % 3], debit=adjusted, cost_centre="CC-1"),
            JournalLine(RECEIVABLES[number % 3], credit=paid + adjusted, memo="receivable"),
        ),
    )


def expected_balances(entries: Iterable[JournalEntry]) -> dict[str, Decimal]:
    """Debit-positive balance per account, as the ledger's ``account_balance`` reports it."""
    balances: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for entry in entries:
        for line in entry.lines:
            balances[line.account] += line.debit - line.credit
    return dict(balances)


def make_ledger(path: Path, **options: object) -> LedgerAdapter:
    """A ledger with DEFAULT_CHART and every month of ENTRY_YEAR open."""
    return LedgerAdapter({"path": str(path), "bootstrap_year": ENTRY_YEAR, **options})


class _Crash:
    """Counts occurrences of one point and SIGKILLs the process on the chosen one."""

    def __init__(self, point: str, after: int) -> None:
        self.point, self.after, self.seen = point, after, 0

    def hit(self, point: str) -> None:
        if point != self.point:
            return
        self.seen += 1
        if self.seen >= self.after:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def on_event(self, event: str, _outbox_id: int) -> None:
        self.hit(event)


def _install_in_mark(crash: _Crash) -> None:
    """Kill inside an outcome transaction: after its UPDATEs were sent, before COMMIT."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    def before_commit(session: Session) -> None:
        session.flush()
        if session.info.get("outcome"):
            crash.hit("in_mark")

    def after_flush(session: Session, _context: Any) -> None:
        if any(type(obj).__name__ == "PostingAttempt" for obj in session.new):
            session.info["outcome"] = True

    event.listen(Session, "after_flush", after_flush)
    event.listen(Session, "before_commit", before_commit)


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    """``env`` replaces ``os.environ`` for the crash settings (a forked test child passes it)."""
    from claimsync_console.engine.worker import drain
    from claimsync_console.store.db import make_engine, session_factory

    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--worker-id", default=f"crash-{os.getpid()}")
    parser.add_argument("--batch-size", type=int, default=3)
    parser.add_argument("--lease-ms", type=int, default=1)
    parser.add_argument("--clock-offset-s", type=float, default=0.0)
    args = parser.parse_args(argv)

    settings = os.environ if env is None else env
    point = settings.get("CLAIMSYNC_CRASH_POINT", "")
    crash = _Crash(point, int(settings.get("CLAIMSYNC_CRASH_AFTER", "1")))
    if point == "in_mark":
        _install_in_mark(crash)
    offset = timedelta(seconds=args.clock_offset_s)
    engine = make_engine(args.db)
    print("ready", flush=True)
    report = drain(
        session_factory(engine),
        make_ledger(Path(args.ledger)),
        worker_id=args.worker_id,
        batch_size=args.batch_size,
        once=True,
        lease=timedelta(milliseconds=args.lease_ms),
        now_fn=lambda: datetime.now(UTC) + offset,
        on_event=crash.on_event if point else None,
    )
    summary = {
        "claimed": report.claimed,
        "posted": report.posted,
        "duplicates": report.duplicates,
        "retried": report.retried,
        "dead": report.dead,
    }
    print(json.dumps(summary), flush=True)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
