"""Releasing a quarantined file (engine/quarantine.py) on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine import quarantine
from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.store import queries
from claimsync_console.store import queries_engine as qe
from claimsync_console.store.models import ClaimPaymentRow
from claimsync_console.store.models_engine import AuditEntry
from tests.engine.test_ingest import MANAGED_CARE_835, NOW, edited

pytestmark = pytest.mark.skipif(not MANAGED_CARE_835.exists(), reason="x12 corpus not present")

Sessions = sessionmaker[Session]


def quarantined_resend(sessions: Sessions, folder: Path) -> int:
    ingest_paths(sessions, [MANAGED_CARE_835], now=NOW)
    again = edited(MANAGED_CARE_835, folder, "r.835", b"TRN*1*7170066655", b"TRN*1*7170066656")
    (result,) = ingest_paths(sessions, [again], now=NOW)
    assert result.status == "quarantined" and result.source_file_id is not None
    return result.source_file_id


def payments(sessions: Sessions) -> int:
    with sessions() as session:
        return len(session.scalars(select(ClaimPaymentRow.id)).all())


def test_release_is_one_transaction_with_its_audit_row(
    db_sessions: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = quarantined_resend(db_sessions, tmp_path)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("audit write failed")

    monkeypatch.setattr(qe, "append_audit", broken)
    with pytest.raises(RuntimeError):
        quarantine.release_file(db_sessions, file_id, operator="a", role="analyst", note="n")
    assert payments(db_sessions) == 2  # the load rolled back with the audit row
    with db_sessions() as session:
        row = queries.get_source_file(session, file_id)
        assert row is not None and row.status == "quarantined"
    monkeypatch.undo()

    released = quarantine.release_file(
        db_sessions, file_id, operator="ana", role="analyst", note="payer confirmed", now=NOW
    )
    assert (released.kind, released.claim_payments, released.paid_total) == ("835", 2, "945.00")
    assert payments(db_sessions) == 4
    with db_sessions() as session:
        (entry,) = session.scalars(select(AuditEntry)).all()
        assert (entry.action, entry.target, entry.work_item_id) == (
            "release_file",
            f"file:{file_id}",
            None,
        )
        assert entry.before is not None and entry.before["status"] == "quarantined"
        assert qe.verify_audit_chain(session) is None

    with pytest.raises(quarantine.ReleaseRefusedError) as twice:
        quarantine.release_file(db_sessions, file_id, operator="a", role="analyst", note="n")
    assert twice.value.code == 3
    with pytest.raises(quarantine.FileNotFoundInStoreError):
        quarantine.release_file(db_sessions, 999, operator="a", role="analyst", note="n")
