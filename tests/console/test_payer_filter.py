"""``payer:`` in a queue filter takes an id or a piece of a payer's name (the queue shows names,
its index holds ids), on SQLite and PostgreSQL, over the committed samples."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine.console_backend import QueueFilter, UsageError
from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.store.queue_search import payers_like
from tests.console.detail_world import World

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


def test_payers_by_id_or_name_piece(db_sessions: sessionmaker[Session]) -> None:
    files = [*sorted((SAMPLES / "837").glob("*.x12"))[:3], *sorted((SAMPLES / "835").glob("*.x12"))]
    ingest_paths(db_sessions, files, now=datetime(2026, 3, 1, tzinfo=UTC))
    with db_sessions() as session:
        assert payers_like(session, "acme") == [("SMPAE", "ACME HEALTH INSURANCE")]
        assert payers_like(session, "smpbc") == [("SMPBC", "BLUE SAMPLE CROSS SHIELD")]
        several = payers_like(session, "sample")
        assert len(several) >= 3 and ("SMPAE", "ACME HEALTH INSURANCE") not in several
        assert payers_like(session, "100%") == []  # a LIKE wildcard is a plain character


def test_a_queue_filters_by_a_payer_name(world: World) -> None:
    backend = world.backend()
    by_name = backend.queue_page("denial", QueueFilter.parse("payer:acme"))
    by_id = backend.queue_page("denial", QueueFilter.parse("payer:SMPAE"))
    assert by_name.rows and [r.id for r in by_name.rows] == [r.id for r in by_id.rows]
    assert {r.payer_id for r in by_name.rows} == {"SMPAE"}
    with pytest.raises(UsageError, match=r"matches \d+ payers"):
        backend.queue_page("denial", QueueFilter.parse("payer:sample"))
