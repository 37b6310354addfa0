"""Crash safety: kill -9 a worker at every step of a posting, many times, and lose nothing.

A real worker process (tests/engine/crash_worker.py) drains a SQLite store into a real ledger
file and SIGKILLs itself at a chosen point: after claiming, before the ERP call, after the ERP
answered but before the outcome is recorded, inside the outcome transaction before COMMIT, and
after COMMIT. After 25 kills a clean drain finishes the job, and the ledger must hold every
posting exactly once with every balance right to the cent.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain.journal import JournalEntry
from claimsync_console.engine.outbox import enqueue_entry
from claimsync_console.engine.worker import drain
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.store.db import make_engine, session_factory, upgrade_to_head
from claimsync_console.store.models_engine import OutboxEntry, PostingAttempt
from tests.engine import crash_worker
from tests.engine.crash_worker import (
    CASH,
    CRASH_POINTS,
    expected_balances,
    make_ledger,
    sample_entry,
)

REPO = Path(__file__).resolve().parents[2]
ROWS = 80
# Round-robin over the points, so each kind of crash happens with rows in every state.
PLAN = [(point, after) for after in (1, 2, 3, 4, 6) for point in CRASH_POINTS]
FRESH_INTERPRETER = {1, 2, 3}  # indexes into PLAN: calling, called and in_mark, after=1


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite+pysqlite:///{tmp_path / 'store.sqlite3'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    yield url, engine
    engine.dispose()


def _enqueue(sessions: sessionmaker[Session], entries: list[JournalEntry]) -> None:
    now = datetime.now(UTC)
    with sessions.begin() as session:
        for entry in entries:
            cash = sum((ln.debit for ln in entry.lines if ln.account == CASH), Decimal("0.00"))
            enqueue_entry(
                session, entry, kind="payment", amount=entry.total_debit, cash_amount=cash,
                trace_number=entry.reference, now=now,
            )  # fmt: skip


def _run_worker(url: str, ledger: Path, point: str, after: int, *, fork: bool) -> int | None:
    """Run one crashing worker to its end; returns its exit code (-9 when it was killed)."""
    argv = ["--db", url, "--ledger", str(ledger), "--batch-size", "3", "--lease-ms", "1"]
    env = {"CLAIMSYNC_CRASH_POINT": point, "CLAIMSYNC_CRASH_AFTER": str(after)}
    if fork:
        child = multiprocessing.get_context("fork").Process(
            target=crash_worker.main, args=(argv, env)
        )
        child.start()
        child.join(60)
        return child.exitcode
    done = subprocess.run(
        [sys.executable, "-m", "tests.engine.crash_worker", *argv],
        cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.stdout.startswith("ready"), done.stderr
    return done.returncode


def _outbox(sessions: sessionmaker[Session]) -> dict[str, tuple[str, str | None]]:
    with sessions() as session:
        rows = session.execute(
            select(OutboxEntry.idempotency_key, OutboxEntry.status, OutboxEntry.erp_reference)
        )
        return {key: (status, ref) for key, status, ref in rows}


def _check_invariants(
    sessions: sessionmaker[Session], ledger: LedgerAdapter, entries: list[JournalEntry]
) -> tuple[int, int]:
    """What must hold after any kill: nothing in the ledger twice or unknown to the outbox,
    and every row the outbox calls posted is in the ledger under the recorded reference.
    Returns (rows posted per the outbox, entries in the ledger)."""
    outbox = _outbox(sessions)
    in_ledger = 0
    for entry in entries:
        posted = ledger.find_entry(entry.idempotency_key)
        status, ref = outbox[entry.idempotency_key]
        if posted is not None:
            in_ledger += 1
            assert ref in (None, posted.erp_reference)
        if status == "posted":
            assert posted is not None and ref == posted.erp_reference
    assert ledger.entry_count() == in_ledger  # every ledger entry is one of ours, once
    posted_rows = sum(1 for status, _ in outbox.values() if status == "posted")
    return posted_rows, in_ledger


def test_kill_nine_at_every_step_then_restart_posts_everything_exactly_once(
    store: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = store
    sessions = session_factory(engine)
    entries = [sample_entry(number) for number in range(1, ROWS + 1)]
    _enqueue(sessions, entries)
    ledger_path = tmp_path / "ledger.sqlite3"
    ledger = make_ledger(ledger_path)

    for run, (point, after) in enumerate(PLAN):
        engine.dispose()  # no open SQLite connection may cross a fork
        exit_code = _run_worker(url, ledger_path, point, after, fork=run not in FRESH_INTERPRETER)
        assert exit_code == -signal.SIGKILL, (run, point, after, exit_code)
        posted_rows, in_ledger = _check_invariants(sessions, ledger, entries)
        assert posted_rows < ROWS  # the plan never runs out of work, so every kill was real
        if point in ("called", "in_mark"):
            # Killed after the ERP's answer but before its outcome was committed: the ledger
            # is ahead of the outbox, which the next worker must reconcile, not post again.
            assert in_ledger > posted_rows

    before_rows, before_ledger = _check_invariants(sessions, ledger, entries)
    report = drain(sessions, ledger, worker_id="final", batch_size=7)
    assert report.dead == 0 and report.retried == 0
    assert report.posted == ROWS - before_rows
    # Rows the ledger already had were answered "already posted", never posted again.
    assert report.duplicates == before_ledger - before_rows

    posted_rows, in_ledger = _check_invariants(sessions, ledger, entries)
    assert posted_rows == in_ledger == ledger.entry_count() == ROWS
    assert set(_outbox(sessions).values()) == {
        ("posted", ledger.find_entry(e.idempotency_key).erp_reference)  # type: ignore[union-attr]
        for e in entries
    }
    for entry in entries:
        stored = ledger.find_entry(entry.idempotency_key)
        assert stored is not None and stored.lines == entry.lines
    expected = expected_balances(entries)
    for account, balance in ledger.trial_balance().items():
        assert balance == expected.get(account, Decimal("0.00")), account
    with sessions() as session:
        recorded = session.scalar(
            select(func.count(PostingAttempt.id)).where(PostingAttempt.outcome == "posted")
        )
    assert recorded == ROWS  # each success recorded once: a killed COMMIT left no trace
