"""Claim search for the remap picker, on SQLite and PostgreSQL: a PCN prefix or a claim id,
never a random page for a blank or one-letter term."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine.claim_search import MAX_RESULTS, search_claims
from claimsync_console.engine.ingest import ingest_paths

SAMPLE_837 = Path(__file__).resolve().parents[2] / "sample_data" / "837"


def test_search_by_prefix_and_by_id(db_sessions: sessionmaker[Session]) -> None:
    files = sorted(SAMPLE_837.glob("*.x12"))[:2]
    ingest_paths(db_sessions, files, now=datetime(2026, 3, 1, tzinfo=UTC))
    found = search_claims(db_sessions, "LCH")
    assert found and len(found) <= MAX_RESULTS
    assert all(hit.patient_control_number.startswith("LCH") for hit in found)
    pcn = found[0].patient_control_number
    exact = search_claims(db_sessions, pcn)
    assert exact and {hit.patient_control_number for hit in exact} == {pcn}
    by_id = search_claims(db_sessions, str(found[0].claim_id))
    assert by_id[0].claim_id == found[0].claim_id
    assert search_claims(db_sessions, "ZZZ") == []
    assert search_claims(db_sessions, "") == [] and search_claims(db_sessions, "L") == []
