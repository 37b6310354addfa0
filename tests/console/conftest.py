"""A small, fixed store for the console tests: every queue with items of known ages, payers and
amounts, dead letters under three error signatures, an adapter's health and some postings.

Times are fixed and the backend's clock is frozen at NOW, so ages, aging buckets and the
sparkline render the same on every run (the snapshot tests depend on it).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.console.app import ClaimSyncApp
from claimsync_console.engine.console_backend import ConsoleBackend
from claimsync_console.engine.rules import load_rules, sample_rules_path
from claimsync_console.store.db import make_engine, session_factory, upgrade_to_head
from claimsync_console.store.models_engine import AdapterHealth, OutboxEntry
from claimsync_console.store.queries_engine import open_work_items
from tests.console.detail_world import world_fixture
from tests.engine.triage_support import sqlite_template_fixture

#: the sample-data world of the detail and action tests, for every module here
__all__ = ["sqlite_template_fixture", "world_fixture"]

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
PAYERS = (("SMPAE", "ACME HEALTH INSURANCE"), ("SMPBC", "BLUE SAMPLE CROSS SHIELD"),
          ("SMPMD", "STATE MEDICAID SAMPLE"))  # fmt: skip
#: kind -> how many open items it gets
SIZES = {
    "unmatched_remittance": 12,
    "mapping_error": 4,
    "dead_letter": 9,
    "approval": 3,
    "denial": 7,
    "rejected_claim": 5,
}
ERRORS = {
    "unmatched_remittance": ("no claim with this patient control number", ""),
    "mapping_error": ("no posting rule for carc:CO-B7", "missing carc:CO-B7"),
    "approval": ("CO-45 over the approval threshold", ""),
    "denial": ("denied (CO-197)", ""),
    "rejected_claim": ("rejected by 277CA (A7:21)", ""),
}
DEAD = (
    ("ERP said 422: account 4150 is closed for posting", "erp-422-account-closed"),
    ("ERP said 422: period 2026-11 is locked", "erp-422-period-locked"),
    ("ERP said 400: memo too long", "erp-400-memo"),
)


def _items() -> list[tuple[datetime, dict[str, object]]]:
    items: list[tuple[datetime, dict[str, object]]] = []
    for kind, size in SIZES.items():
        for n in range(size):
            payer_id, payer_name = PAYERS[n % len(PAYERS)]
            if kind == "dead_letter":
                error, signature = DEAD[0] if n < 5 else DEAD[1] if n < 8 else DEAD[2]
            else:
                error, signature = ERRORS[kind]
            created = NOW - timedelta(days=(n * 4) % 30, hours=n)
            items.append((created, {
                "kind": kind, "source_key": f"{kind}-{n}",
                "amount": Decimal(17 + n * 53 % 400) + Decimal("0.25"),
                "payer_id": payer_id, "payer_name": payer_name,
                "patient_control_number": f"PCN{kind[:2].upper()}{n:04d}",
                "trace_number": f"TRN{n:05d}", "error": error, "error_signature": signature,
            }))  # fmt: skip
    return items


def seed(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        for created, item in _items():
            open_work_items(session, [item], now=created)
        session.add(
            AdapterHealth(
                adapter="ledger", circuit_state="closed", consecutive_failures=0,
                last_success_at=NOW - timedelta(seconds=42), last_failure_at=None,
                opened_at=None, latency_samples=[5, 7, 9, 30], p50_ms=7, p95_ms=30,
                updated_at=NOW - timedelta(seconds=42),
            )
        )  # fmt: skip
        for n in range(24):
            at = NOW - timedelta(minutes=(n * 7) % 29, seconds=5)
            posted = n % 6 != 0
            session.add(
                OutboxEntry(
                    idempotency_key=f"key-{n}", kind="payment", entry={}, amount=Decimal("10.00"),
                    cash_amount=Decimal("10.00"), status="posted" if posted else "pending",
                    attempts=1, next_attempt_at=at, created_at=at - timedelta(minutes=3),
                    posted_at=at if posted else None,
                )
            )  # fmt: skip


@pytest.fixture
def console_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'console.sqlite'}")
    upgrade_to_head(engine)
    sessions = session_factory(engine)
    seed(sessions)
    yield sessions
    engine.dispose()


@pytest.fixture
def backend(console_sessions: sessionmaker[Session]) -> ConsoleBackend:
    return ConsoleBackend(
        console_sessions, load_rules(sample_rules_path()), operator="dana", role="supervisor",
        clock=lambda: NOW,
    )  # fmt: skip


def make_app(backend: ConsoleBackend, **kwargs: object) -> ClaimSyncApp:
    return ClaimSyncApp(backend, **kwargs)  # type: ignore[arg-type]
