"""The REST adapter's wire format: entries as JSON with decimal strings, and Retry-After.

Kept apart from ``erp.rest`` because both ends use it: the adapter writes what the sandbox ERP
(``erp.sandbox``) reads, and the batch-file adapter stores entries in the same shape.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from claimsync_console.domain.journal import JournalEntry, JournalLine, entry_to_dict
from claimsync_console.erp.base import PostedEntry


def entry_to_wire(entry: JournalEntry) -> dict[str, Any]:
    """Amounts as decimal strings, never JSON numbers (a float would round cents)."""
    return entry_to_dict(entry)


def entry_from_wire(data: Mapping[str, Any]) -> JournalEntry:
    """The inverse of :func:`entry_to_wire`; raises KeyError/TypeError/ValueError if malformed."""
    return JournalEntry(
        idempotency_key=str(data["idempotency_key"]),
        entry_date=date.fromisoformat(str(data["entry_date"])),
        description=str(data.get("description", "")),
        reference=str(data.get("reference", "")),
        lines=tuple(_line_from_wire(line) for line in data["lines"]),
    )


def _line_from_wire(data: Mapping[str, Any]) -> JournalLine:
    try:
        debit, credit = Decimal(str(data["debit"])), Decimal(str(data["credit"]))
    except InvalidOperation as exc:
        raise ValueError(f"amount is not a decimal: {exc}") from exc
    return JournalLine(
        account=str(data["account"]),
        debit=debit,
        credit=credit,
        cost_centre=str(data.get("cost_centre", "")),
        memo=str(data.get("memo", "")),
    )


def posted_to_wire(posted: PostedEntry) -> dict[str, Any]:
    wire = entry_to_wire(
        JournalEntry(
            posted.idempotency_key,
            posted.entry_date,
            posted.description,
            posted.lines,
            posted.reference,
        )
    )
    wire.update(
        erp_reference=posted.erp_reference,
        reversal_of=posted.reversal_of,
        reversed_by=posted.reversed_by,
        created_at=None if posted.created_at is None else posted.created_at.isoformat(),
    )
    return wire


def posted_from_wire(data: Mapping[str, Any]) -> PostedEntry:
    entry = entry_from_wire(data)
    created = data.get("created_at")
    return PostedEntry(
        erp_reference=str(data["erp_reference"]),
        idempotency_key=entry.idempotency_key,
        entry_date=entry.entry_date,
        description=entry.description,
        reference=entry.reference,
        lines=entry.lines,
        reversal_of=data.get("reversal_of"),
        reversed_by=data.get("reversed_by"),
        created_at=datetime.fromisoformat(created) if created else None,
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)
