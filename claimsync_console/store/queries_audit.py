"""Reading the audit trail: the hash-chained ``audit_log`` and the ``triage_actions`` rows.

Both are listed in id order, which for the audit log is the chain's order (each row links to the
one before it), so an export read page by page can be verified on its own. Pages are keyset on
``id``: an export of a year of actions never holds more than one page in memory. Like every
query module, these functions take a Session and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claimsync_console.store.models_engine import AuditEntry
from claimsync_console.store.models_triage import TriageAction


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit rows to read; None means no bound. ``until`` is exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    work_item_id: int | None = None
    operator: str | None = None


def _where(query: Any, wanted: AuditFilter) -> Any:
    """``query`` is any SELECT over audit_log (Any: Select's generics differ across 2.0/2.1)."""
    conditions: list[Any] = []
    if wanted.since is not None:
        conditions.append(AuditEntry.at >= wanted.since)
    if wanted.until is not None:
        conditions.append(AuditEntry.at < wanted.until)
    if wanted.work_item_id is not None:
        conditions.append(AuditEntry.work_item_id == wanted.work_item_id)
    if wanted.operator is not None:
        conditions.append(AuditEntry.operator == wanted.operator)
    return query.where(*conditions)


def audit_page(
    session: Session, wanted: AuditFilter, *, after_id: int = 0, limit: int = 500
) -> Sequence[AuditEntry]:
    """Up to ``limit`` rows with ids above ``after_id``, in chain order."""
    query = _where(select(AuditEntry).where(AuditEntry.id > after_id), wanted)
    return session.scalars(query.order_by(AuditEntry.id).limit(limit)).all()


def audit_count(session: Session, wanted: AuditFilter) -> int:
    query = _where(select(func.count(AuditEntry.id)), wanted)
    return int(session.scalar(query) or 0)


def audit_entry(session: Session, audit_id: int) -> AuditEntry | None:
    return session.get(AuditEntry, audit_id)


def previous_audit_entry(session: Session, audit_id: int) -> AuditEntry | None:
    """The row just before ``audit_id`` in the chain (None for the first row)."""
    return session.scalars(
        select(AuditEntry).where(AuditEntry.id < audit_id).order_by(AuditEntry.id.desc()).limit(1)
    ).one_or_none()


def item_actions(session: Session, work_item_id: int) -> Sequence[TriageAction]:
    """The operator actions recorded on an item, oldest first (their ids are what ``reverse``
    takes)."""
    return session.scalars(
        select(TriageAction)
        .where(TriageAction.work_item_id == work_item_id)
        .order_by(TriageAction.id)
    ).all()


def head_hash(session: Session) -> str | None:
    """The newest row's hash: the chain's head, for an auditor to keep outside the database."""
    return session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))


def has_hash(session: Session, wanted: str) -> bool:
    return (
        session.scalar(select(AuditEntry.id).where(AuditEntry.hash == wanted).limit(1)) is not None
    )


def first_unaudited_action(session: Session) -> TriageAction | None:
    """The first operator action with no audit row of its own. Every action writes one in its
    transaction (same item, same instant), so a miss means audit rows were deleted; the chain
    alone cannot see rows cut from its end."""
    audited = (
        select(AuditEntry.id)
        .where(
            AuditEntry.work_item_id == TriageAction.work_item_id,
            AuditEntry.at == TriageAction.created_at,
        )
        .exists()
    )
    return session.scalars(
        select(TriageAction).where(~audited).order_by(TriageAction.id).limit(1)
    ).one_or_none()
