"""Tables for everything ingest keeps: files, their bytes, 835 remittances, 837 claims, 277CA.

Tables are created only by the Alembic migrations; a test checks that these models and the
migrations agree. Every relationship is ``lazy="raise"`` so that a forgotten eager load fails
loudly in tests instead of issuing one query per row in a 100k-claim file. Text taken from files
is unbounded ``String`` so that an over-long value never makes PostgreSQL reject a load that
SQLite accepted. Names and member ids (PHI) live in JSON columns, never in indexed text.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from claimsync_console.store.types import DecimalText, IdType, Money, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

FILE_STATUSES = ("received", "loaded", "duplicate", "quarantined")

JsonList = list[Any]
JsonDict = dict[str, Any]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        Decimal: Money(),
        datetime: UTCDateTime(),
        date: Date(),
        str: String(),
        int: Integer(),
        JsonList: JSON(),
        JsonDict: JSON(),
    }


def _pk() -> Mapped[int]:
    return mapped_column(IdType, primary_key=True, autoincrement=True)


def _fk(target: str, *, nullable: bool = False) -> Mapped[Any]:
    return mapped_column(IdType, ForeignKey(target), nullable=nullable, index=True)


class FileBlob(Base):
    """The original bytes, committed before parsing so nothing received is ever lost."""

    __tablename__ = "file_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class SourceFile(Base):
    """One received file and what became of it."""

    __tablename__ = "source_files"
    __table_args__ = (
        CheckConstraint(
            "status IN ('received', 'loaded', 'duplicate', 'quarantined')", name="status"
        ),
        Index("ix_source_files_sender_interchange", "sender_id", "interchange_control_number"),
    )

    id: Mapped[int] = _pk()
    sha256: Mapped[str] = mapped_column(String(64), ForeignKey("file_blobs.sha256"), unique=True)
    name: Mapped[str]
    kind: Mapped[str] = mapped_column(String(16), default="unknown")
    size: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime]
    loaded_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), index=True)
    findings: Mapped[JsonList] = mapped_column(JSON, default=list)
    error_summary: Mapped[str] = mapped_column(Text, default="")
    interchange_control_number: Mapped[str] = mapped_column(default="")
    sender_id: Mapped[str] = mapped_column(default="")

    remittances: Mapped[list[Remittance]] = relationship(lazy="raise", back_populates="source_file")
    claims: Mapped[list[ClaimRow]] = relationship(lazy="raise", back_populates="source_file")


class Remittance(Base):
    """One 835 transaction set (ST..SE): a check or EFT and its claim payments."""

    __tablename__ = "remittances"

    id: Mapped[int] = _pk()
    source_file_id: Mapped[int] = _fk("source_files.id")
    interchange_control_number: Mapped[str]
    group_control_number: Mapped[str]
    transaction_control_number: Mapped[str]
    version: Mapped[str]
    sender_id: Mapped[str]
    receiver_id: Mapped[str]
    handling_code: Mapped[str]
    payment_amount: Mapped[Decimal]
    credit_debit: Mapped[str]
    payment_method: Mapped[str]
    payment_format: Mapped[str]
    payment_date: Mapped[date | None]
    trace_type: Mapped[str]
    trace_number: Mapped[str] = mapped_column(index=True)
    originator_id: Mapped[str]
    payer_name: Mapped[str]
    payer_id_qualifier: Mapped[str]
    payer_identifier: Mapped[str]
    payee_name: Mapped[str]
    payee_id_qualifier: Mapped[str]
    payee_identifier: Mapped[str]
    payer_contact: Mapped[str]
    production_date: Mapped[date | None]
    provider_adjustment_total: Mapped[Decimal | None]
    claim_payment_count: Mapped[int | None]
    paid_total: Mapped[Decimal | None]
    segment_start: Mapped[int]
    segment_end: Mapped[int | None]

    source_file: Mapped[SourceFile] = relationship(lazy="raise", back_populates="remittances")
    claim_payments: Mapped[list[ClaimPaymentRow]] = relationship(
        lazy="raise", back_populates="remittance"
    )
    provider_adjustments: Mapped[list[ProviderAdjustmentRow]] = relationship(lazy="raise")


class ClaimPaymentRow(Base):
    """One CLP loop (2100). ``source_file_id`` is denormalised for per-file counts."""

    __tablename__ = "claim_payments"

    id: Mapped[int] = _pk()
    remittance_id: Mapped[int] = _fk("remittances.id")
    source_file_id: Mapped[int] = _fk("source_files.id")
    sequence: Mapped[int]
    patient_control_number: Mapped[str] = mapped_column(index=True)
    status_code: Mapped[str]
    charge: Mapped[Decimal]
    paid: Mapped[Decimal]
    patient_responsibility: Mapped[Decimal | None]
    filing_indicator: Mapped[str]
    payer_claim_control_number: Mapped[str] = mapped_column(index=True)
    facility_code: Mapped[str]
    frequency_code: Mapped[str]
    drg_code: Mapped[str]
    segment_start: Mapped[int]
    segment_end: Mapped[int]
    patient: Mapped[JsonDict | None]
    insured: Mapped[JsonDict | None]
    corrected_patient: Mapped[JsonDict | None]
    corrected_insured: Mapped[JsonDict | None]
    rendering_provider: Mapped[JsonDict | None]
    references: Mapped[JsonList]
    dates: Mapped[JsonList]
    amounts: Mapped[JsonList]
    quantities: Mapped[JsonList]
    inpatient_remarks: Mapped[JsonList]
    outpatient_remarks: Mapped[JsonList]

    remittance: Mapped[Remittance] = relationship(lazy="raise", back_populates="claim_payments")
    services: Mapped[list[ServicePaymentRow]] = relationship(lazy="raise")
    adjustments: Mapped[list[AdjustmentRow]] = relationship(lazy="raise")


class ServicePaymentRow(Base):
    """One SVC loop (2110)."""

    __tablename__ = "service_payments"

    id: Mapped[int] = _pk()
    claim_payment_id: Mapped[int] = _fk("claim_payments.id")
    line_number: Mapped[int]
    procedure_qualifier: Mapped[str]
    procedure_code: Mapped[str]
    modifiers: Mapped[JsonList]
    charge: Mapped[Decimal]
    paid: Mapped[Decimal]
    revenue_code: Mapped[str]
    units_paid: Mapped[Decimal | None] = mapped_column(DecimalText)
    original_procedure_code: Mapped[str]
    original_units: Mapped[Decimal | None] = mapped_column(DecimalText)
    segment_index: Mapped[int]
    references: Mapped[JsonList]
    dates: Mapped[JsonList]
    amounts: Mapped[JsonList]
    quantities: Mapped[JsonList]
    remark_codes: Mapped[JsonList]


class AdjustmentRow(Base):
    """One CAS triplet; ``service_payment_id`` is NULL for a claim-level adjustment."""

    __tablename__ = "adjustments"

    id: Mapped[int] = _pk()
    claim_payment_id: Mapped[int] = _fk("claim_payments.id")
    service_payment_id: Mapped[int | None] = _fk("service_payments.id", nullable=True)
    position: Mapped[int]
    group_code: Mapped[str]
    reason_code: Mapped[str]
    amount: Mapped[Decimal]
    quantity: Mapped[Decimal | None] = mapped_column(DecimalText)


class ProviderAdjustmentRow(Base):
    """One PLB reason/amount pair; positive amounts reduce the check."""

    __tablename__ = "provider_adjustments"

    id: Mapped[int] = _pk()
    remittance_id: Mapped[int] = _fk("remittances.id")
    position: Mapped[int]
    provider_id: Mapped[str]
    fiscal_period_date: Mapped[date | None]
    reason_code: Mapped[str]
    reference: Mapped[str]
    amount: Mapped[Decimal]
    segment_index: Mapped[int]


class ClaimRow(Base):
    """One 837 claim (CLM) as billed."""

    __tablename__ = "claims"
    __table_args__ = (Index("ix_claims_pcn_payer", "patient_control_number", "payer_identifier"),)

    id: Mapped[int] = _pk()
    source_file_id: Mapped[int] = _fk("source_files.id")
    transaction_control_number: Mapped[str]
    kind: Mapped[str] = mapped_column(String(16))
    patient_control_number: Mapped[str]
    billed_amount: Mapped[Decimal]
    payer_name: Mapped[str]
    payer_id_qualifier: Mapped[str]
    payer_identifier: Mapped[str]
    billing_provider_name: Mapped[str]
    billing_provider_id_qualifier: Mapped[str]
    billing_provider_identifier: Mapped[str]
    billing_provider_npi: Mapped[str]
    rendering_provider_npi: Mapped[str]
    facility_code: Mapped[str]
    facility_code_qualifier: Mapped[str]
    frequency_code: Mapped[str]
    service_date_from: Mapped[date | None]
    service_date_to: Mapped[date | None]
    subscriber: Mapped[JsonDict]
    patient: Mapped[JsonDict | None]
    payer_claim_control_number: Mapped[str]
    references: Mapped[JsonList]
    claim_filing_indicator: Mapped[str]
    segment_start: Mapped[int]
    segment_end: Mapped[int]

    source_file: Mapped[SourceFile] = relationship(lazy="raise", back_populates="claims")
    lines: Mapped[list[ServiceLineRow]] = relationship(lazy="raise")


class ServiceLineRow(Base):
    """One 837 service line (LX with SV1 or SV2)."""

    __tablename__ = "service_lines"

    id: Mapped[int] = _pk()
    claim_id: Mapped[int] = _fk("claims.id")
    line_number: Mapped[int]
    procedure_qualifier: Mapped[str]
    procedure_code: Mapped[str]
    modifiers: Mapped[JsonList]
    charge: Mapped[Decimal]
    units: Mapped[Decimal | None] = mapped_column(DecimalText)
    unit_basis: Mapped[str]
    revenue_code: Mapped[str]
    service_date: Mapped[date | None]
    service_date_end: Mapped[date | None]


class ClaimStatusRow(Base):
    """One 277CA claim-level acknowledgement."""

    __tablename__ = "claim_statuses"

    id: Mapped[int] = _pk()
    source_file_id: Mapped[int] = _fk("source_files.id")
    transaction_control_number: Mapped[str]
    patient_control_number: Mapped[str] = mapped_column(index=True)
    payer_claim_control_number: Mapped[str]
    status: Mapped[str] = mapped_column(String(16))
    codes: Mapped[JsonList]
    status_date: Mapped[date | None]
    charge: Mapped[Decimal | None]
    payer_name: Mapped[str]
    payer_identifier: Mapped[str]
    patient: Mapped[JsonDict | None]
    segment_start: Mapped[int]
    segment_end: Mapped[int]


# The engine's tables live in their own module; importing it here puts them in Base.metadata.
from claimsync_console.store import models_engine as _models_engine  # noqa: E402, F401
from claimsync_console.store import models_triage as _models_triage  # noqa: E402, F401
