"""Bulk inserts return ids in input order on both backends; relationships never lazy-load."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.store import queries
from claimsync_console.store.models import ClaimPaymentRow, Remittance

Sessions = sessionmaker[Session]
NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def _file(session: Session, sha: str = "a" * 64) -> int:
    queries.add_blob(session, sha, b"ISA...")
    queries.add_blob(session, sha, b"ISA...")  # a second store of the same bytes is a no-op
    return queries.add_source_file(session, sha256=sha, name="f.835", size=6, received_at=NOW).id


def _remittance(file_id: int) -> dict[str, object]:
    names = [
        "interchange_control_number", "group_control_number", "transaction_control_number",
        "version", "sender_id", "receiver_id", "handling_code", "credit_debit", "payment_method",
        "payment_format", "trace_type", "originator_id", "payer_name", "payer_id_qualifier",
        "payer_identifier", "payee_name", "payee_id_qualifier", "payee_identifier", "payer_contact",
    ]  # fmt: skip
    text = dict.fromkeys(names, "")
    return {
        **text,
        "source_file_id": file_id,
        "payment_amount": Decimal("0.00"),
        "trace_number": "TRN1",
        "payment_date": None,
        "production_date": None,
        "segment_start": 3,
    }


def _payment(remittance_id: int, file_id: int, n: int) -> dict[str, object]:
    return {
        "remittance_id": remittance_id,
        "source_file_id": file_id,
        "sequence": n,
        "patient_control_number": f"PCN{n:05d}",
        "status_code": "1",
        "charge": Decimal("1.00"),
        "paid": Decimal(n).scaleb(-2),
        "patient_responsibility": None,
        "filing_indicator": "",
        "payer_claim_control_number": "",
        "facility_code": "",
        "frequency_code": "",
        "drg_code": "",
        "segment_start": n,
        "segment_end": n,
        **{
            k: None
            for k in (
                "patient",
                "insured",
                "corrected_patient",
                "corrected_insured",
                "rendering_provider",
            )
        },
        **{
            k: []
            for k in (
                "references",
                "dates",
                "amounts",
                "quantities",
                "inpatient_remarks",
                "outpatient_remarks",
            )
        },
    }


def test_bulk_insert_returns_ids_in_input_order(db_sessions: Sessions) -> None:
    rows_count = 2500  # more than one insertmanyvalues page
    with db_sessions() as session, session.begin():
        file_id = _file(session)
        remittance_id = queries.insert_remittance(session, _remittance(file_id))
        rows = [_payment(remittance_id, file_id, n) for n in range(1, rows_count + 1)]
        ids = queries.insert_claim_payments(session, rows)
        by_id = {
            row.id: row.patient_control_number
            for row in session.execute(
                select(ClaimPaymentRow.id, ClaimPaymentRow.patient_control_number)
            )
        }
        assert [by_id[i] for i in ids] == [r["patient_control_number"] for r in rows]
        totals = queries.file_totals(session, file_id)
    assert totals.claim_payments == rows_count
    assert totals.paid_total == Decimal(rows_count * (rows_count + 1) // 2).scaleb(-2)


def test_queries_never_commit(db_sessions: Sessions) -> None:
    with db_sessions() as session:
        _file(session)
        session.rollback()
    with db_sessions() as session:
        assert queries.get_source_file_by_sha256(session, "a" * 64) is None
        assert queries.get_blob(session, "a" * 64) is None


def test_relationships_refuse_to_lazy_load(db_sessions: Sessions) -> None:
    with db_sessions() as session, session.begin():
        file_id = _file(session)
        queries.insert_remittance(session, _remittance(file_id))
    with db_sessions() as session:
        remittance = session.scalars(select(Remittance)).one()
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = remittance.claim_payments
        source = queries.get_source_file(session, file_id)
        assert source is not None
        with pytest.raises(InvalidRequestError):
            _ = source.remittances


def test_delete_file_rows_keeps_other_files(db_sessions: Sessions) -> None:
    with db_sessions() as session, session.begin():
        first, second = _file(session, "a" * 64), _file(session, "b" * 64)
        for file_id in (first, second):
            remittance_id = queries.insert_remittance(session, _remittance(file_id))
            queries.insert_claim_payments(
                session, [_payment(remittance_id, file_id, n) for n in (1, 2, 3)]
            )
        queries.delete_file_rows(session, first)
        assert queries.file_totals(session, first).claim_payments == 0
        assert queries.file_totals(session, second).claim_payments == 3
        assert queries.table_counts(session)["remittances"] == 1


def test_every_relationship_is_lazy_raise() -> None:
    from claimsync_console.store.models import Base

    relationships = [rel for mapper in Base.registry.mappers for rel in mapper.relationships]
    assert len(relationships) >= 8
    assert {rel.lazy for rel in relationships} == {"raise"}
