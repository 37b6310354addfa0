"""Console queues: an index per sortable column, so each queue page is one index seek.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

The queue screens sort by age, payer, claim, amount or error and page by keyset. (kind, state,
created_at, id) and (kind, state, amount) already exist; these add payer (which also serves a
payer filter in age order), claim and error signature, each ending in the columns that break
ties so PostgreSQL can seek as well as SQLite does.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_work_items_queue_payer": ["kind", "state", "payer_id", "created_at", "id"],
    "ix_work_items_queue_claim": ["kind", "state", "patient_control_number", "id"],
    "ix_work_items_queue_error": ["kind", "state", "error_signature", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "work_items", columns, unique=False)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="work_items")
