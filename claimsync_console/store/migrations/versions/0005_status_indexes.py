"""Dashboard indexes: each figure read from an index that covers it, at a million rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Measured with ``benchmarks/bench_status.py`` (1M work items, 1M outbox rows), each of these was
a read of the table row by row through an index that did not cover the query:

* ``outbox (status, posted_at)``: the postings-per-minute window. Before, every posted row's
  entry in (status, next_attempt_at) was read and then its row for ``posted_at``.
* ``outbox (status, kind, cash_amount)``: the "posted" stage (count and cash of posted
  payments and reversals), answered from the index alone.
* ``work_items (kind, state, created_at, amount)``: the aging buckets, count and dollars of the
  open items by age, answered from the open items' index entries alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_outbox_status_posted_at": ("outbox", ["status", "posted_at"]),
    "ix_outbox_status_kind_cash": ("outbox", ["status", "kind", "cash_amount"]),
    "ix_work_items_aging": ("work_items", ["kind", "state", "created_at", "amount"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
