"""Initial schema: files and their bytes, 835 remittances, 837 claims, 277CA statuses.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Types are spelled out as the storage types (money is BIGINT cents, quantities are text, times
are TIMESTAMP WITH TIME ZONE) so this migration never changes when the Python-side
TypeDecorators in claimsync_console.store.types do.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column:
    return sa.Column("id", ID, autoincrement=True, nullable=False)


def _ref(name: str, table: str, *, nullable: bool = False) -> list[SchemaItem]:
    return [
        sa.Column(name, ID, nullable=nullable),
        sa.ForeignKeyConstraint([name], [f"{table}.id"], name=f"fk_%s_{name}_{table}"),
    ]


def _text(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.String(), nullable=False) for name in names]


def _money(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _json(*names: str, nullable: bool = False) -> list[sa.Column]:
    return [sa.Column(name, sa.JSON(), nullable=nullable) for name in names]


def _date(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Date(), nullable=True) for name in names]


def _int(*names: str, nullable: bool = False) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=nullable) for name in names]


def _table(name: str, *items: SchemaItem | Sequence[SchemaItem]) -> None:
    flat: list[SchemaItem] = []
    for item in items:
        flat.extend(item if isinstance(item, Sequence) else [item])
    for element in flat:  # the naming convention, applied by hand so it never drifts
        if isinstance(element, sa.ForeignKeyConstraint) and "%s" in str(element.name):
            element.name = str(element.name).replace("%s", name)
    op.create_table(name, *flat, sa.PrimaryKeyConstraint("id", name=f"pk_{name}"))


def _index(table: str, *columns: str, name: str | None = None) -> None:
    op.create_index(name or f"ix_{table}_{columns[0]}", table, list(columns), unique=False)


def upgrade() -> None:
    op.create_table(
        "file_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_file_blobs"),
    )
    op.create_table(
        "source_files",
        _id(),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("error_summary", sa.Text(), nullable=False),
        *_text("interchange_control_number", "sender_id"),
        sa.CheckConstraint(
            "status IN ('received', 'loaded', 'duplicate', 'quarantined')",
            name="ck_source_files_status",
        ),
        sa.ForeignKeyConstraint(
            ["sha256"], ["file_blobs.sha256"], name="fk_source_files_sha256_file_blobs"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_source_files"),
        sa.UniqueConstraint("sha256", name="uq_source_files_sha256"),
    )
    _index("source_files", "sender_id", "interchange_control_number",
           name="ix_source_files_sender_interchange")
    _index("source_files", "status")

    _table(
        "remittances",
        _id(),
        _ref("source_file_id", "source_files"),
        _text("interchange_control_number", "group_control_number",
              "transaction_control_number", "version", "sender_id", "receiver_id",
              "handling_code"),
        _money("payment_amount"),
        _text("credit_debit", "payment_method", "payment_format"),
        _date("payment_date"),
        _text("trace_type", "trace_number", "originator_id", "payer_name",
              "payer_id_qualifier", "payer_identifier", "payee_name", "payee_id_qualifier",
              "payee_identifier", "payer_contact"),
        _date("production_date"),
        _money("provider_adjustment_total", nullable=True),
        _int("claim_payment_count", nullable=True),
        _money("paid_total", nullable=True),
        _int("segment_start"),
        _int("segment_end", nullable=True),
    )
    _index("remittances", "source_file_id")
    _index("remittances", "trace_number")

    _table(
        "claim_payments",
        _id(),
        _ref("remittance_id", "remittances"),
        _ref("source_file_id", "source_files"),
        _int("sequence"),
        _text("patient_control_number", "status_code"),
        _money("charge"),
        _money("paid"),
        _money("patient_responsibility", nullable=True),
        _text("filing_indicator", "payer_claim_control_number", "facility_code",
              "frequency_code", "drg_code"),
        _int("segment_start", "segment_end"),
        _json("patient", "insured", "corrected_patient", "corrected_insured",
              "rendering_provider", nullable=True),
        _json("references", "dates", "amounts", "quantities", "inpatient_remarks",
              "outpatient_remarks"),
    )
    for column in ("patient_control_number", "payer_claim_control_number", "remittance_id",
                   "source_file_id"):
        _index("claim_payments", column)

    _table(
        "service_payments",
        _id(),
        _ref("claim_payment_id", "claim_payments"),
        _int("line_number"),
        _text("procedure_qualifier", "procedure_code"),
        _json("modifiers"),
        _money("charge"),
        _money("paid"),
        _text("revenue_code"),
        sa.Column("units_paid", sa.String(), nullable=True),
        _text("original_procedure_code"),
        sa.Column("original_units", sa.String(), nullable=True),
        _int("segment_index"),
        _json("references", "dates", "amounts", "quantities", "remark_codes"),
    )
    _index("service_payments", "claim_payment_id")

    _table(
        "adjustments",
        _id(),
        _ref("claim_payment_id", "claim_payments"),
        _ref("service_payment_id", "service_payments", nullable=True),
        _int("position"),
        _text("group_code", "reason_code"),
        _money("amount"),
        sa.Column("quantity", sa.String(), nullable=True),
    )
    _index("adjustments", "claim_payment_id")
    _index("adjustments", "service_payment_id")

    _table(
        "provider_adjustments",
        _id(),
        _ref("remittance_id", "remittances"),
        _int("position"),
        _text("provider_id"),
        _date("fiscal_period_date"),
        _text("reason_code", "reference"),
        _money("amount"),
        _int("segment_index"),
    )
    _index("provider_adjustments", "remittance_id")

    _table(
        "claims",
        _id(),
        _ref("source_file_id", "source_files"),
        _text("transaction_control_number"),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _text("patient_control_number"),
        _money("billed_amount"),
        _text("payer_name", "payer_id_qualifier", "payer_identifier", "billing_provider_name",
              "billing_provider_id_qualifier", "billing_provider_identifier",
              "billing_provider_npi", "rendering_provider_npi", "facility_code",
              "facility_code_qualifier", "frequency_code"),
        _date("service_date_from", "service_date_to"),
        _json("subscriber"),
        _json("patient", nullable=True),
        _text("payer_claim_control_number"),
        _json("references"),
        _text("claim_filing_indicator"),
        _int("segment_start", "segment_end"),
    )
    _index("claims", "patient_control_number", "payer_identifier", name="ix_claims_pcn_payer")
    _index("claims", "source_file_id")

    _table(
        "service_lines",
        _id(),
        _ref("claim_id", "claims"),
        _int("line_number"),
        _text("procedure_qualifier", "procedure_code"),
        _json("modifiers"),
        _money("charge"),
        sa.Column("units", sa.String(), nullable=True),
        _text("unit_basis", "revenue_code"),
        _date("service_date", "service_date_end"),
    )
    _index("service_lines", "claim_id")

    _table(
        "claim_statuses",
        _id(),
        _ref("source_file_id", "source_files"),
        _text("transaction_control_number", "patient_control_number",
              "payer_claim_control_number"),
        sa.Column("status", sa.String(length=16), nullable=False),
        _json("codes"),
        _date("status_date"),
        _money("charge", nullable=True),
        _text("payer_name", "payer_identifier"),
        _json("patient", nullable=True),
        _int("segment_start", "segment_end"),
    )
    _index("claim_statuses", "patient_control_number")
    _index("claim_statuses", "source_file_id")


def downgrade() -> None:
    for table in ("claim_statuses", "service_lines", "claims", "provider_adjustments",
                  "adjustments", "service_payments", "claim_payments", "remittances",
                  "source_files", "file_blobs"):
        op.drop_table(table)
