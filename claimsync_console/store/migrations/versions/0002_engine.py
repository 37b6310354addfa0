"""Engine tables: work items, payment matches, 277CA acks, outbox, posting attempts, audit log,
adapter health; plus the lookup indexes the matcher needs on claims and claim_statuses.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

As in 0001, types are the storage types (money is BIGINT cents, times TIMESTAMP WITH TIME ZONE)
so this file never changes when the Python-side TypeDecorators do.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", ID, autoincrement=True, nullable=False)


def _ref(table: str, name: str, target: str, *, nullable: bool = True) -> list[SchemaItem]:
    return [
        sa.Column(name, ID, nullable=nullable),
        sa.ForeignKeyConstraint([name], [f"{target}.id"], name=f"fk_{table}_{name}_{target}"),
    ]


def _str(name: str, *, nullable: bool = False, length: int | None = None) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=False)


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def _ts(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, TS, nullable=nullable)


def _json(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.JSON(), nullable=nullable)


def _int(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _check(table: str, name: str, column: str, values: Sequence[str]) -> sa.CheckConstraint:
    listed = ", ".join(repr(v) for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=f"ck_{table}_{name}")


def _table(name: str, *items: SchemaItem | list[SchemaItem], pk: str = "id") -> None:
    flat: list[SchemaItem] = []
    for item in items:
        flat.extend(item if isinstance(item, list) else [item])
    op.create_table(name, *flat, sa.PrimaryKeyConstraint(pk, name=f"pk_{name}"))


def _index(table: str, *columns: str, name: str | None = None) -> None:
    op.create_index(name or f"ix_{table}_{columns[0]}", table, list(columns), unique=False)


KINDS = ("unmatched_remittance", "mapping_error", "dead_letter", "approval", "denial",
         "rejected_claim")
STATES = ("open", "in_progress", "resolved", "written_off", "ignored")
MATCH_STATUSES = ("matched", "unmatched", "ambiguous", "reversal_linked", "reversal_orphan")


def upgrade() -> None:
    _table(
        "work_items",
        _id(),
        _str("kind", length=24),
        _str("state", length=16),
        _int("version"),
        _str("payer_id"),
        _str("payer_name"),
        _str("patient_control_number"),
        _money("amount"),
        _ref("work_items", "claim_payment_id", "claim_payments"),
        _ref("work_items", "claim_id", "claims"),
        _ref("work_items", "remittance_id", "remittances"),
        sa.Column("outbox_id", ID, nullable=True),
        _str("trace_number"),
        _text("error"),
        _text("error_signature"),
        _json("details"),
        _str("source_key"),
        _str("assigned_to", nullable=True),
        _ts("lease_expires_at", nullable=True),
        _str("requested_by", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("resolved_at", nullable=True),
        _check("work_items", "kind", "kind", KINDS),
        _check("work_items", "state", "state", STATES),
        sa.UniqueConstraint("kind", "source_key", name="uq_work_items_kind_source_key"),
    )
    for column in ("claim_payment_id", "claim_id", "remittance_id", "outbox_id",
                   "error_signature"):
        _index("work_items", column)
    _index("work_items", "kind", "state", "created_at", "id",
           name="ix_work_items_kind_state_created")
    _index("work_items", "kind", "state", "payer_id", name="ix_work_items_kind_state_payer")
    _index("work_items", "kind", "state", "amount", name="ix_work_items_kind_state_amount")
    _index("work_items", "state", "created_at", "id", name="ix_work_items_state_created")

    _table(
        "payment_matches",
        _id(),
        _ref("payment_matches", "claim_payment_id", "claim_payments", nullable=False),
        _ref("payment_matches", "claim_id", "claims"),
        _str("status", length=16),
        _str("method", length=16, nullable=True),
        _int("score", nullable=True),
        _ref("payment_matches", "reversed_payment_id", "claim_payments"),
        _ref("payment_matches", "work_item_id", "work_items"),
        _json("warnings"),
        _ts("matched_at"),
        _check("payment_matches", "status", "status", MATCH_STATUSES),
        sa.CheckConstraint(
            "method IS NULL OR method IN ('pcn_payer', 'payer_ccn', 'manual')",
            name="ck_payment_matches_method",
        ),
        sa.UniqueConstraint("claim_payment_id", name="uq_payment_matches_claim_payment_id"),
    )
    for column in ("claim_id", "reversed_payment_id", "work_item_id", "status"):
        _index("payment_matches", column)

    _table(
        "claim_acks",
        _id(),
        _ref("claim_acks", "claim_status_id", "claim_statuses", nullable=False),
        _ref("claim_acks", "claim_id", "claims"),
        _str("state", length=16),
        _ref("claim_acks", "work_item_id", "work_items"),
        _ts("applied_at"),
        _check("claim_acks", "state", "state", ("accepted", "rejected", "pending", "other")),
        sa.UniqueConstraint("claim_status_id", name="uq_claim_acks_claim_status_id"),
    )
    _index("claim_acks", "claim_id")
    _index("claim_acks", "work_item_id")

    _table(
        "outbox",
        _id(),
        _str("idempotency_key"),
        _str("kind", length=16),
        _json("entry"),
        _money("amount"),
        _money("cash_amount"),
        _ref("outbox", "remittance_id", "remittances"),
        _str("trace_number"),
        _ref("outbox", "claim_payment_id", "claim_payments"),
        _ref("outbox", "work_item_id", "work_items"),
        _str("status", length=16),
        _int("attempts"),
        _ts("next_attempt_at"),
        _str("lease_owner", nullable=True),
        _ts("lease_expires_at", nullable=True),
        _str("erp_reference", nullable=True),
        _text("last_error"),
        _ts("created_at"),
        _ts("posted_at", nullable=True),
        _check("outbox", "kind", "kind", ("payment", "reversal", "plb", "write_off", "operator")),
        _check("outbox", "status", "status", ("pending", "in_flight", "posted", "dead")),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    )
    for column in ("remittance_id", "trace_number", "claim_payment_id", "work_item_id"):
        _index("outbox", column)
    _index("outbox", "status", "next_attempt_at", name="ix_outbox_status_next_attempt")

    _table(
        "posting_attempts",
        _id(),
        _ref("posting_attempts", "outbox_id", "outbox", nullable=False),
        _ts("attempted_at"),
        _str("outcome", length=16),
        _text("error"),
        _int("latency_ms", nullable=True),
        _check("posting_attempts", "outcome", "outcome", ("posted", "transient", "permanent")),
    )
    _index("posting_attempts", "outbox_id")

    _table(
        "audit_log",
        _id(),
        _ts("at"),
        _str("operator"),
        _str("role"),
        _str("action"),
        _ref("audit_log", "work_item_id", "work_items"),
        _str("target"),
        _json("before", nullable=True),
        _json("after", nullable=True),
        _str("reason"),
        _text("note"),
        _str("prev_hash", length=64),
        _str("hash", length=64),
        sa.UniqueConstraint("prev_hash", name="uq_audit_log_prev_hash"),
    )
    _index("audit_log", "at")
    _index("audit_log", "work_item_id")

    _table(
        "adapter_health",
        _str("adapter", length=64),
        _str("circuit_state", length=16),
        _int("consecutive_failures"),
        _ts("last_success_at", nullable=True),
        _ts("last_failure_at", nullable=True),
        _ts("opened_at", nullable=True),
        _json("latency_samples"),
        _int("p50_ms", nullable=True),
        _int("p95_ms", nullable=True),
        _ts("updated_at"),
        _check("adapter_health", "circuit_state", "circuit_state",
               ("closed", "open", "half_open")),
        pk="adapter",
    )

    _index("claim_statuses", "payer_claim_control_number")
    _index("claims", "payer_claim_control_number")
    _index("claims", "payer_identifier", "billed_amount", name="ix_claims_payer_billed")
    _index("claims", "payer_identifier", "service_date_from", name="ix_claims_payer_service_date")


def downgrade() -> None:
    op.drop_index("ix_claims_payer_service_date", table_name="claims")
    op.drop_index("ix_claims_payer_billed", table_name="claims")
    op.drop_index("ix_claims_payer_claim_control_number", table_name="claims")
    op.drop_index("ix_claim_statuses_payer_claim_control_number", table_name="claim_statuses")
    for table in ("adapter_health", "audit_log", "posting_attempts", "outbox", "claim_acks",
                  "payment_matches", "work_items"):
        op.drop_table(table)
