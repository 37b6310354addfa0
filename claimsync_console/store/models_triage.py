"""The operator actions table: what the triage service did, so that an action can be reversed.

Created only by migration 0003. An action that posts records its outbox row here in the same
transaction as the posting, which is what makes ``keys.action_key(work_item_id, action_id)`` a
stable key. The audit log says who did what (hash-chained, never updated); this table carries the
mutable bit the audit chain cannot: which action a later one reversed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from claimsync_console.store.models import Base, JsonDict
from claimsync_console.store.types import IdType

TRIAGE_ACTIONS = (
    "remap",
    "reprocess",
    "approve",
    "retry",
    "write_off",
    "write_off_requested",
    "ignore",
    "reverse",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class TriageAction(Base):
    """One operator action on one work item. ``outbox_id`` is the posting it queued (None when
    it posted nothing); a ``reverse`` row points at the action it undid through
    ``reverses_action_id`` and that action at it through ``reversed_by_action_id``."""

    __tablename__ = "triage_actions"
    __table_args__ = (CheckConstraint(_in("action", TRIAGE_ACTIONS), name="action"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    work_item_id: Mapped[int] = mapped_column(IdType, ForeignKey("work_items.id"), index=True)
    action: Mapped[str] = mapped_column(String(24))
    operator: Mapped[str]
    role: Mapped[str] = mapped_column(String(32))
    outbox_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("outbox.id"), index=True)
    reverses_action_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("triage_actions.id"))
    reversed_by_action_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("triage_actions.id")
    )
    created_at: Mapped[datetime]
    payload: Mapped[JsonDict] = mapped_column(JSON, default=dict)
