"""The audit trail as scripts and auditors read it: rows as JSON-ready dicts, streamed in chain
order, and a chain check that says which row broke and how.

Rows keep ``prev_hash`` and ``hash``, so an export taken with ``claimsync audit export`` can be
re-verified outside ClaimSync with nothing but the rows (``queries_engine.audit_hash`` is the
recipe: sha256 over the canonical JSON of the fields plus the previous hash).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.store import queries_audit as qa
from claimsync_console.store import queries_engine as qe
from claimsync_console.store.models_engine import AuditEntry
from claimsync_console.store.queries_audit import AuditFilter

__all__ = ["AUDIT_COLUMNS", "AuditFilter", "ChainCheck", "audit_json", "audit_rows", "verify"]

#: The keys of every exported row, in CSV column order.
AUDIT_COLUMNS = (
    "id", "at", "operator", "role", "action", "work_item_id", "target", "reason", "note",
    "before", "after", "prev_hash", "hash",
)  # fmt: skip
PAGE = 500


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """One row, JSON-ready. ``before``/``after`` are the item snapshots (state and money, never
    PHI), or None for an action that changed no item (a PHI reveal)."""
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "operator": entry.operator,
        "role": entry.role,
        "action": entry.action,
        "work_item_id": entry.work_item_id,
        "target": entry.target,
        "reason": entry.reason,
        "note": entry.note,
        "before": entry.before,
        "after": entry.after,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def audit_rows(
    session: Session, wanted: AuditFilter, *, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """Every row ``wanted`` selects, in chain order, read a page at a time."""
    after, given = 0, 0
    while limit is None or given < limit:
        size = PAGE if limit is None else min(PAGE, limit - given)
        page = qa.audit_page(session, wanted, after_id=after, limit=size)
        for entry in page:
            yield audit_json(entry)
        given += len(page)
        if len(page) < size:
            return
        after = page[-1].id


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """``first_broken``: the first row whose hash or link does not check out, with ``why``;
    ``head``: the newest row's hash, to record and hand back as ``known_head`` next time."""

    intact: bool
    rows: int
    first_broken: dict[str, Any] | None = None
    why: str = ""
    head: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "rows": self.rows,
            "first_broken_id": None if self.first_broken is None else self.first_broken["id"],
            "first_broken": self.first_broken,
            "why": self.why,
            "head": self.head,
        }


def verify(session: Session, known_head: str | None = None) -> ChainCheck:
    """Walk the whole chain; on a break, say whether the row was edited (its content no longer
    gives its hash) or the chain was cut (its link names a hash the row before does not have:
    a row removed, inserted or re-ordered). A chain stays whole when rows are cut from its
    end, so two more checks: every operator action still has its audit row, and a head the
    auditor recorded earlier (``known_head``) is still in the chain."""
    rows = qa.audit_count(session, AuditFilter())
    head = qa.head_hash(session)
    broken_id = qe.verify_audit_chain(session, batch=PAGE)
    if broken_id is not None:
        entry = qa.audit_entry(session, broken_id)
        assert entry is not None
        return ChainCheck(False, rows, audit_json(entry), _why(session, entry), head)
    if known_head is not None and not qa.has_hash(session, known_head.strip().lower()):
        why = (
            f"the head recorded earlier ({known_head.strip()[:16]}...) is no longer in the chain:"
            " rows were removed from its end, or it was rewritten"
        )
        return ChainCheck(False, rows, None, why, head)
    orphan = qa.first_unaudited_action(session)
    if orphan is not None:
        why = (
            f"operator action {orphan.id} ({orphan.action} on work item {orphan.work_item_id},"
            f" {iso(orphan.created_at)}) has no audit row: audit rows were removed"
        )
        return ChainCheck(False, rows, None, why, head)
    return ChainCheck(True, rows, head=head)


def _why(session: Session, entry: AuditEntry) -> str:
    before = qa.previous_audit_entry(session, entry.id)
    expected_link = before.hash if before is not None else qe.GENESIS_HASH
    if entry.prev_hash != expected_link:
        named = f"row {before.id}'s hash" if before is not None else "the chain's start"
        return (
            f"its link (prev_hash) does not match {named}: a row was removed, inserted or"
            " re-ordered"
        )
    fields = {name: getattr(entry, name) for name in qe.AUDIT_FIELDS}
    if entry.hash != qe.audit_hash(fields, entry.prev_hash):
        return "its content no longer gives its hash: the row was edited after it was written"
    return "it does not check out"
