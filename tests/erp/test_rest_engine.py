"""The real outbox worker posting through the REST adapter to a faulty sandbox ERP.

Every fault mode at once (errors, 429s, timeouts, dropped connections, malformed replies), with
a seeded plan: the worker must end with every row posted, each entry in the ERP exactly once,
and the ledger balanced. Time is an injected clock, so backoffs cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from claimsync_console.engine.breaker import BreakerPolicy
from claimsync_console.engine.outbox import enqueue_entry
from claimsync_console.engine.retry import RetryPolicy
from claimsync_console.engine.runtime import Store, open_store
from claimsync_console.engine.worker import drain
from claimsync_console.erp.rest import RestAdapter
from claimsync_console.erp.sandbox import SandboxServer, open_sandbox_ledger
from claimsync_console.erp.sandbox_faults import FaultPlan
from tests.erp.contract import CONTRACT_DATE, payment_entry

T0 = datetime(2024, 3, 20, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite+pysqlite:///{tmp_path / 'store.sqlite3'}")
    yield opened
    opened.dispose()


def test_every_fault_mode_ends_posted_exactly_once(store: Store, tmp_path: Path) -> None:
    ledger = open_sandbox_ledger(tmp_path / "erp.sqlite3", year=CONTRACT_DATE.year)
    plan = FaultPlan(error_rate=0.1, rate_limit_rate=0.1, timeout_rate=0.05, drop_rate=0.1,
                     malformed_rate=0.1, hang=0.5, retry_after=3.0, seed=11)  # fmt: skip
    entries = [payment_entry(paid=f"{n}.00") for n in range(1, 41)]
    with store.sessions.begin() as session:
        for entry in entries:
            enqueue_entry(session, entry, kind="payment", amount=entry.total_debit,
                          cash_amount=entry.lines[0].debit, now=T0)  # fmt: skip
    clock = Clock()
    with SandboxServer(ledger, faults=plan) as server:
        adapter = RestAdapter({"base_url": server.url, "max_retries": 0, "timeout": 0.2})
        report = drain(
            store.sessions, adapter, worker_id="w1", once=False, max_attempts=30, batch_size=3,
            now_fn=clock, sleep_fn=clock.sleep,
            retry_policy=RetryPolicy(base_seconds=1, cap_seconds=10, floor_seconds=1),
            breaker_policy=BreakerPolicy(failure_threshold=1000),
        )  # fmt: skip
        faults = server.stats()["faults"]
        adapter.close()
    assert (report.posted, report.dead) == (40, 0)
    assert all(count > 0 for count in faults.values()), faults  # every mode really struck
    assert report.duplicates > 0  # replies lost after the commit were answered by the key
    assert ledger.entry_count() == 40
    for entry in entries:
        found = ledger.find_entry(entry.idempotency_key)
        assert found is not None and found.lines == entry.lines
    assert sum(ledger.trial_balance().values(), Decimal(0)) == 0
