"""Triage: the operator actions table (what was done, which posting, what reversed it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

As in 0001 and 0002, types are the storage types (times TIMESTAMP WITH TIME ZONE, ids BIGINT
on PostgreSQL and INTEGER on SQLite) so this file never changes when the models do.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
ACTIONS = ("remap", "reprocess", "approve", "retry", "write_off", "write_off_requested",
           "ignore", "reverse")


def upgrade() -> None:
    listed = ", ".join(repr(a) for a in ACTIONS)
    op.create_table(
        "triage_actions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("work_item_id", ID, nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("operator", sa.String(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("outbox_id", ID, nullable=True),
        sa.Column("reverses_action_id", ID, nullable=True),
        sa.Column("reversed_by_action_id", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["work_item_id"], ["work_items.id"],
                                name="fk_triage_actions_work_item_id_work_items"),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"],
                                name="fk_triage_actions_outbox_id_outbox"),
        sa.ForeignKeyConstraint(["reverses_action_id"], ["triage_actions.id"],
                                name="fk_triage_actions_reverses_action_id_triage_actions"),
        sa.ForeignKeyConstraint(["reversed_by_action_id"], ["triage_actions.id"],
                                name="fk_triage_actions_reversed_by_action_id_triage_actions"),
        sa.CheckConstraint(f"action IN ({listed})", name="ck_triage_actions_action"),
        sa.PrimaryKeyConstraint("id", name="pk_triage_actions"),
    )
    op.create_index("ix_triage_actions_work_item_id", "triage_actions", ["work_item_id"])
    op.create_index("ix_triage_actions_outbox_id", "triage_actions", ["outbox_id"])


def downgrade() -> None:
    op.drop_index("ix_triage_actions_outbox_id", table_name="triage_actions")
    op.drop_index("ix_triage_actions_work_item_id", table_name="triage_actions")
    op.drop_table("triage_actions")
