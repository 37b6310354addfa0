"""Queries and bulk writes. Every function takes a Session and never commits: the caller owns
the transaction, which is what lets ingest load a whole file atomically.

Bulk loads go through Core-style ``insert(...)`` executemany with RETURNING in parameter order
(SQLAlchemy's "insertmanyvalues"), which batches rows into multi-row INSERTs on SQLite and
PostgreSQL alike and hands back the new ids in input order, so children can be linked without
an ORM unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from claimsync_console.domain import ZERO
from claimsync_console.store.models import (
    AdjustmentRow,
    Base,
    ClaimPaymentRow,
    ClaimRow,
    ClaimStatusRow,
    FileBlob,
    ProviderAdjustmentRow,
    Remittance,
    ServiceLineRow,
    ServicePaymentRow,
    SourceFile,
)

Row = dict[str, Any]


# -- source files and their bytes ------------------------------------------------------------


def get_source_file_by_sha256(session: Session, sha256: str) -> SourceFile | None:
    return session.scalars(select(SourceFile).where(SourceFile.sha256 == sha256)).one_or_none()


def get_source_file(session: Session, source_file_id: int) -> SourceFile | None:
    return session.get(SourceFile, source_file_id)


def get_blob(session: Session, sha256: str) -> bytes | None:
    return session.scalars(select(FileBlob.content).where(FileBlob.sha256 == sha256)).one_or_none()


def add_blob(session: Session, sha256: str, content: bytes) -> None:
    """Store the bytes once; a second call with the same hash is a no-op."""
    exists = session.scalar(select(FileBlob.sha256).where(FileBlob.sha256 == sha256))
    if exists is None:
        session.execute(
            insert(FileBlob), [{"sha256": sha256, "size": len(content), "content": content}]
        )


def add_source_file(
    session: Session,
    *,
    sha256: str,
    name: str,
    size: int,
    received_at: datetime,
    interchange_control_number: str = "",
    sender_id: str = "",
) -> SourceFile:
    source = SourceFile(
        sha256=sha256,
        name=name,
        kind="unknown",
        size=size,
        received_at=received_at,
        status="received",
        findings=[],
        error_summary="",
        interchange_control_number=interchange_control_number,
        sender_id=sender_id,
    )
    session.add(source)
    session.flush()
    return source


def lock_source_file(session: Session, source_file_id: int) -> str | None:
    """Lock the file's row for this transaction (PostgreSQL; SQLite has one writer anyway) and
    return its status, so two processes can never load the same file at once."""
    return session.scalar(
        select(SourceFile.status).where(SourceFile.id == source_file_id).with_for_update()
    )


def set_file_outcome(
    session: Session,
    source_file_id: int,
    *,
    status: str,
    kind: str,
    findings: list[dict[str, Any]],
    error_summary: str = "",
    loaded_at: datetime | None = None,
) -> None:
    session.execute(
        update(SourceFile)
        .where(SourceFile.id == source_file_id)
        .values(
            status=status,
            kind=kind,
            findings=findings,
            error_summary=error_summary,
            loaded_at=loaded_at,
        )
    )


def loaded_interchanges(
    session: Session, sender_id: str, interchange_control_number: str, *, exclude_id: int
) -> Sequence[SourceFile]:
    """Loaded files, other than ``exclude_id``, that carried this sender's ISA13: the candidates
    the re-sent rule then narrows by qualifiers, receiver and kind (engine/interchange.py)."""
    return session.scalars(
        select(SourceFile)
        .where(
            SourceFile.sender_id == sender_id,
            SourceFile.interchange_control_number == interchange_control_number,
            SourceFile.status == "loaded",
            SourceFile.id != exclude_id,
        )
        .order_by(SourceFile.id)
    ).all()


def same_trace_remittances(session: Session, source_file_id: int) -> Sequence[Any]:
    """Every remittance sharing a TRN02 with one of this file's, in this file or in a loaded
    one, with what identifies its check (engine/resent_check.py compares them), by id."""
    traces = select(Remittance.trace_number).where(Remittance.source_file_id == source_file_id)
    return session.execute(
        select(
            Remittance.id,
            Remittance.source_file_id,
            Remittance.transaction_control_number,
            Remittance.trace_number,
            Remittance.payer_identifier,
            Remittance.payer_name,
            Remittance.credit_debit,
            Remittance.payment_amount,
            Remittance.payment_date,
            Remittance.claim_payment_count,
            Remittance.paid_total,
            Remittance.segment_start,
            Remittance.payee_identifier,
            SourceFile.name,
        )
        .join(SourceFile, SourceFile.id == Remittance.source_file_id)
        .where(
            Remittance.trace_number.in_(traces),
            or_(SourceFile.id == source_file_id, SourceFile.status == "loaded"),
        )
        .order_by(Remittance.id)
    ).all()


def get_blob_head(session: Session, sha256: str, size: int) -> bytes | None:
    """The first ``size`` bytes of a kept file, without reading the whole blob into memory."""
    head = session.scalars(
        select(func.substr(FileBlob.content, 1, size)).where(FileBlob.sha256 == sha256)
    ).one_or_none()
    return None if head is None else bytes(head)


def list_source_files(session: Session, *, status: str | None = None) -> Sequence[SourceFile]:
    query = select(SourceFile).order_by(SourceFile.id)
    if status is not None:
        query = query.where(SourceFile.status == status)
    return session.scalars(query).all()


def delete_file_rows(session: Session, source_file_id: int) -> None:
    """Remove everything loaded from a file (children first), keeping the file and its bytes."""
    payments = select(ClaimPaymentRow.id).where(ClaimPaymentRow.source_file_id == source_file_id)
    remits = select(Remittance.id).where(Remittance.source_file_id == source_file_id)
    claims = select(ClaimRow.id).where(ClaimRow.source_file_id == source_file_id)
    session.execute(delete(AdjustmentRow).where(AdjustmentRow.claim_payment_id.in_(payments)))
    session.execute(
        delete(ServicePaymentRow).where(ServicePaymentRow.claim_payment_id.in_(payments))
    )
    session.execute(delete(ClaimPaymentRow).where(ClaimPaymentRow.source_file_id == source_file_id))
    session.execute(
        delete(ProviderAdjustmentRow).where(ProviderAdjustmentRow.remittance_id.in_(remits))
    )
    session.execute(delete(Remittance).where(Remittance.source_file_id == source_file_id))
    session.execute(delete(ServiceLineRow).where(ServiceLineRow.claim_id.in_(claims)))
    session.execute(delete(ClaimRow).where(ClaimRow.source_file_id == source_file_id))
    session.execute(delete(ClaimStatusRow).where(ClaimStatusRow.source_file_id == source_file_id))


# -- bulk inserts ------------------------------------------------------------------------------


def insert_returning_ids(session: Session, model: type[Base], rows: Sequence[Row]) -> list[int]:
    """Insert a batch and return the new ids in the order of ``rows``."""
    if not rows:
        return []
    table_id = model.__table__.c.id
    statement = insert(model).returning(table_id, sort_by_parameter_order=True)
    return list(session.scalars(statement, list(rows)).all())


def insert_rows(session: Session, model: type[Base], rows: Sequence[Row]) -> None:
    """Insert a batch whose ids nobody needs (leaf tables)."""
    if rows:
        session.execute(insert(model), list(rows))


def insert_remittance(session: Session, row: Row) -> int:
    return insert_returning_ids(session, Remittance, [row])[0]


def finish_remittance(session: Session, remittance_id: int, values: Row) -> None:
    session.execute(update(Remittance).where(Remittance.id == remittance_id).values(**values))


def insert_claim_payments(session: Session, rows: Sequence[Row]) -> list[int]:
    return insert_returning_ids(session, ClaimPaymentRow, rows)


def insert_service_payments(session: Session, rows: Sequence[Row]) -> list[int]:
    return insert_returning_ids(session, ServicePaymentRow, rows)


def insert_adjustments(session: Session, rows: Sequence[Row]) -> None:
    insert_rows(session, AdjustmentRow, rows)


def insert_provider_adjustments(session: Session, rows: Sequence[Row]) -> None:
    insert_rows(session, ProviderAdjustmentRow, rows)


def insert_claims(session: Session, rows: Sequence[Row]) -> list[int]:
    return insert_returning_ids(session, ClaimRow, rows)


def insert_service_lines(session: Session, rows: Sequence[Row]) -> None:
    insert_rows(session, ServiceLineRow, rows)


def insert_claim_statuses(session: Session, rows: Sequence[Row]) -> None:
    insert_rows(session, ClaimStatusRow, rows)


# -- counts and totals -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileTotals:
    """What one file put in the store; money is summed in SQL over integer cents."""

    remittances: int
    claim_payments: int
    paid_total: Decimal
    claims: int
    billed_total: Decimal
    claim_statuses: int


def file_totals(session: Session, source_file_id: int) -> FileTotals:
    payments = session.execute(
        select(func.count(ClaimPaymentRow.id), func.sum(ClaimPaymentRow.paid)).where(
            ClaimPaymentRow.source_file_id == source_file_id
        )
    ).one()
    claims = session.execute(
        select(func.count(ClaimRow.id), func.sum(ClaimRow.billed_amount)).where(
            ClaimRow.source_file_id == source_file_id
        )
    ).one()
    return FileTotals(
        remittances=_count(session, Remittance, Remittance.source_file_id == source_file_id),
        claim_payments=payments[0],
        paid_total=payments[1] if payments[1] is not None else ZERO,
        claims=claims[0],
        billed_total=claims[1] if claims[1] is not None else ZERO,
        claim_statuses=_count(
            session, ClaimStatusRow, ClaimStatusRow.source_file_id == source_file_id
        ),
    )


def _count(session: Session, model: type[Base], *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def table_counts(session: Session) -> dict[str, int]:
    """Rows per table: the cheapest proof that a re-run loaded nothing twice."""
    return {
        mapper.class_.__tablename__: _count(session, mapper.class_)
        for mapper in Base.registry.mappers
    }
