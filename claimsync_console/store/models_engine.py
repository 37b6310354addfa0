"""Tables for the engine: matches, work items, the outbox, posting attempts, audit, adapter health.

Created only by migration 0002 (a test checks that the migrations and these models agree). The
same conventions as ``models.py``: money is ``Money`` (integer cents), times are ``UTCDateTime``,
every relationship is ``lazy="raise"``. Status-like columns carry CHECK constraints so that a
typo in code fails at the database instead of creating an invisible queue. The indexes are the
ones the queue screens and the matcher need at a million rows; each names the screen it serves.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from claimsync_console.store.models import (
    Base,
    ClaimRow,
    ClaimStatusRow,
    JsonDict,
    JsonList,
)
from claimsync_console.store.types import IdType

MATCH_STATUSES = ("matched", "unmatched", "ambiguous", "reversal_linked", "reversal_orphan")
MATCH_METHODS = ("pcn_payer", "payer_ccn", "manual")
ACK_STATES = ("accepted", "rejected", "pending", "other")
OUTBOX_KINDS = ("payment", "reversal", "plb", "write_off", "operator")
OUTBOX_STATUSES = ("pending", "in_flight", "posted", "dead")
ATTEMPT_OUTCOMES = ("posted", "transient", "permanent")
CIRCUIT_STATES = ("closed", "open", "half_open")
WORK_ITEM_KINDS = (
    "unmatched_remittance",
    "mapping_error",
    "dead_letter",
    "approval",
    "denial",
    "rejected_claim",
)
WORK_ITEM_STATES = ("open", "in_progress", "resolved", "written_off", "ignored")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _pk() -> Mapped[int]:
    return mapped_column(IdType, primary_key=True, autoincrement=True)


def _ref(target: str, *, nullable: bool = True) -> Mapped[int | None]:
    return mapped_column(IdType, ForeignKey(target), nullable=nullable, index=True)


# Lookups the matcher makes on the ingest tables (declared here so models.py stays untouched):
# a corrected CLP07 against the 277CA's REF*1K and the 837's REF*F8, and candidate claims of the
# same payer with the same billed amount or service date.
Index("ix_claim_statuses_payer_claim_control_number", ClaimStatusRow.payer_claim_control_number)
Index("ix_claims_payer_claim_control_number", ClaimRow.payer_claim_control_number)
Index("ix_claims_payer_billed", ClaimRow.payer_identifier, ClaimRow.billed_amount)
Index("ix_claims_payer_service_date", ClaimRow.payer_identifier, ClaimRow.service_date_from)


class WorkItem(Base):
    """Something an analyst must decide. ``version`` increments on every change (optimistic
    concurrency); ``(kind, source_key)`` is unique so reprocessing never opens a duplicate."""

    __tablename__ = "work_items"
    __table_args__ = (
        CheckConstraint(_in("kind", WORK_ITEM_KINDS), name="kind"),
        CheckConstraint(_in("state", WORK_ITEM_STATES), name="state"),
        UniqueConstraint("kind", "source_key", name="uq_work_items_kind_source_key"),
        Index("ix_work_items_kind_state_created", "kind", "state", "created_at", "id"),
        Index("ix_work_items_kind_state_payer", "kind", "state", "payer_id"),
        Index("ix_work_items_kind_state_amount", "kind", "state", "amount"),
        Index("ix_work_items_state_created", "state", "created_at", "id"),
        # The console's sort orders (migration 0004; store/queries_queue.py).
        Index("ix_work_items_queue_payer", "kind", "state", "payer_id", "created_at", "id"),
        Index("ix_work_items_queue_claim", "kind", "state", "patient_control_number", "id"),
        Index("ix_work_items_queue_error", "kind", "state", "error_signature", "created_at", "id"),
        # the dashboard's aging buckets, from the index alone (migration 0005)
        Index("ix_work_items_aging", "kind", "state", "created_at", "amount"),
    )

    id: Mapped[int] = _pk()
    kind: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    payer_id: Mapped[str] = mapped_column(default="")
    payer_name: Mapped[str] = mapped_column(default="")
    patient_control_number: Mapped[str] = mapped_column(default="")
    amount: Mapped[Decimal]
    claim_payment_id: Mapped[int | None] = _ref("claim_payments.id")
    claim_id: Mapped[int | None] = _ref("claims.id")
    remittance_id: Mapped[int | None] = _ref("remittances.id")
    outbox_id: Mapped[int | None] = mapped_column(IdType, index=True)
    trace_number: Mapped[str] = mapped_column(default="")
    error: Mapped[str] = mapped_column(Text, default="")
    error_signature: Mapped[str] = mapped_column(Text, default="", index=True)
    details: Mapped[JsonDict] = mapped_column(JSON, default=dict)
    source_key: Mapped[str]
    assigned_to: Mapped[str | None]
    lease_expires_at: Mapped[datetime | None]
    requested_by: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class PaymentMatch(Base):
    """The matcher's verdict on one claim payment (CLP): exactly one row per payment, so the
    payments still to match are an indexed anti-join. Several rows may share a claim (a split
    claim paid under several CLPs accumulates)."""

    __tablename__ = "payment_matches"
    __table_args__ = (
        CheckConstraint(_in("status", MATCH_STATUSES), name="status"),
        CheckConstraint(f"method IS NULL OR {_in('method', MATCH_METHODS)}", name="method"),
        UniqueConstraint("claim_payment_id", name="uq_payment_matches_claim_payment_id"),
        Index("ix_payment_matches_status", "status"),
    )

    id: Mapped[int] = _pk()
    claim_payment_id: Mapped[int] = mapped_column(IdType, ForeignKey("claim_payments.id"))
    claim_id: Mapped[int | None] = _ref("claims.id")
    status: Mapped[str] = mapped_column(String(16))
    method: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int | None]
    reversed_payment_id: Mapped[int | None] = _ref("claim_payments.id")
    work_item_id: Mapped[int | None] = _ref("work_items.id")
    warnings: Mapped[JsonList] = mapped_column(JSON, default=list)
    matched_at: Mapped[datetime]


class ClaimAck(Base):
    """What one 277CA claim status did to a claim. The claim's acknowledgement state is its
    newest row; ``claim_id`` is NULL while the 837 it answers has not been loaded."""

    __tablename__ = "claim_acks"
    __table_args__ = (
        CheckConstraint(_in("state", ACK_STATES), name="state"),
        UniqueConstraint("claim_status_id", name="uq_claim_acks_claim_status_id"),
    )

    id: Mapped[int] = _pk()
    claim_status_id: Mapped[int] = mapped_column(IdType, ForeignKey("claim_statuses.id"))
    claim_id: Mapped[int | None] = _ref("claims.id")
    state: Mapped[str] = mapped_column(String(16))
    work_item_id: Mapped[int | None] = _ref("work_items.id")
    applied_at: Mapped[datetime]


class OutboxEntry(Base):
    """A journal entry waiting for (or done with) the ERP, written in the same transaction as
    the state change that caused it. ``idempotency_key`` reaches the ERP."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_in("kind", OUTBOX_KINDS), name="kind"),
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
        UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
        Index("ix_outbox_status_next_attempt", "status", "next_attempt_at"),
        # the dashboard's sparkline and "posted" stage (migration 0005)
        Index("ix_outbox_status_posted_at", "status", "posted_at"),
        Index("ix_outbox_status_kind_cash", "status", "kind", "cash_amount"),
    )

    id: Mapped[int] = _pk()
    idempotency_key: Mapped[str]
    kind: Mapped[str] = mapped_column(String(16))
    entry: Mapped[JsonDict] = mapped_column(JSON)
    amount: Mapped[Decimal]
    cash_amount: Mapped[Decimal]
    remittance_id: Mapped[int | None] = _ref("remittances.id")
    trace_number: Mapped[str] = mapped_column(default="", index=True)
    claim_payment_id: Mapped[int | None] = _ref("claim_payments.id")
    work_item_id: Mapped[int | None] = _ref("work_items.id")
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None]
    lease_expires_at: Mapped[datetime | None]
    erp_reference: Mapped[str | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    posted_at: Mapped[datetime | None]


class PostingAttempt(Base):
    """One try at posting an outbox row: the error history a dead letter carries."""

    __tablename__ = "posting_attempts"
    __table_args__ = (CheckConstraint(_in("outcome", ATTEMPT_OUTCOMES), name="outcome"),)

    id: Mapped[int] = _pk()
    outbox_id: Mapped[int] = mapped_column(IdType, ForeignKey("outbox.id"), index=True)
    attempted_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text, default="")
    latency_ms: Mapped[int | None]


class AuditEntry(Base):
    """One operator action. ``hash`` chains each row to the previous one; ``prev_hash`` is
    unique, so two writers racing for the chain's end cannot both succeed (one fork loses)."""

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("prev_hash", name="uq_audit_log_prev_hash"),)

    id: Mapped[int] = _pk()
    at: Mapped[datetime] = mapped_column(index=True)
    operator: Mapped[str]
    role: Mapped[str]
    action: Mapped[str]
    work_item_id: Mapped[int | None] = _ref("work_items.id")
    target: Mapped[str] = mapped_column(default="")
    before: Mapped[JsonDict | None] = mapped_column(JSON)
    after: Mapped[JsonDict | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(default="")
    note: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AdapterHealth(Base):
    """The circuit breaker and latency of one ERP adapter (the outbox worker keeps it)."""

    __tablename__ = "adapter_health"
    __table_args__ = (CheckConstraint(_in("circuit_state", CIRCUIT_STATES), name="circuit_state"),)

    adapter: Mapped[str] = mapped_column(String(64), primary_key=True)
    circuit_state: Mapped[str] = mapped_column(String(16), default="closed")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    latency_samples: Mapped[JsonList] = mapped_column(JSON, default=list)
    p50_ms: Mapped[int | None]
    p95_ms: Mapped[int | None]
    updated_at: Mapped[datetime]
