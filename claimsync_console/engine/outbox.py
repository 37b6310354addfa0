"""The transactional outbox: a posting is queued in the same transaction as its cause.

Whatever decides that money moves (a matched payment, an approval, a write-off) calls
:func:`enqueue_entry` with its own session and commits once: either the state change and its
posting both exist, or neither does. The worker (``engine.worker``) delivers the row later,
outside that transaction, and the ERP deduplicates on the idempotency key, so delivery can be
retried any number of times.

Entries are stored as JSON with decimal strings and ISO dates, never floats: ``str(Decimal)``
round-trips exactly, exponent included, so what reaches the ERP is exactly what was built.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.domain import JournalEntry, JournalLine
from claimsync_console.domain.journal import entry_to_dict
from claimsync_console.store.models_engine import OUTBOX_KINDS
from claimsync_console.store.queries_outbox import insert_outbox_row

ENTRY_FORMAT = 1


class EntryFormatError(ValueError):
    """A stored entry cannot be read back (hand-edited, or written by a newer version)."""


def entry_to_json(entry: JournalEntry) -> dict[str, Any]:
    """The shared domain encoding, stamped with a format so old rows stay readable."""
    return {"format": ENTRY_FORMAT, **entry_to_dict(entry)}


def entry_from_json(data: Any) -> JournalEntry:
    """The exact inverse of :func:`entry_to_json`; anything else is an EntryFormatError."""
    try:
        if data["format"] != ENTRY_FORMAT:
            raise EntryFormatError(f"unknown entry format {data['format']!r}")
        return JournalEntry(
            idempotency_key=_text(data["idempotency_key"]),
            entry_date=date.fromisoformat(_text(data["entry_date"])),
            description=_text(data["description"]),
            reference=_text(data["reference"]),
            lines=tuple(
                JournalLine(
                    account=_text(line["account"]),
                    debit=_decimal(line["debit"]),
                    credit=_decimal(line["credit"]),
                    cost_centre=_text(line["cost_centre"]),
                    memo=_text(line["memo"]),
                )
                for line in data["lines"]
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, EntryFormatError):
            raise
        raise EntryFormatError(f"stored entry is unreadable: {type(exc).__name__}: {exc}") from exc


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _decimal(value: Any) -> Decimal:
    try:
        amount = Decimal(_text(value))
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not a decimal") from exc
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
    return amount


def enqueue_entry(
    session: Session,
    entry: JournalEntry,
    *,
    kind: str,
    amount: Decimal,
    cash_amount: Decimal,
    now: datetime,
    remittance_id: int | None = None,
    trace_number: str = "",
    claim_payment_id: int | None = None,
    work_item_id: int | None = None,
) -> int:
    """Queue ``entry`` in the caller's transaction; returns the outbox id. Idempotent by the
    entry's key: queuing it again returns the first row's id and changes nothing.

    ``amount`` is the dollars at stake (shown on queues and dead letters); ``cash_amount`` the
    part that moves cash for the check ``trace_number`` (what reconciliation sums). The entry
    must balance here, so an unbalanced one fails the cause's transaction, not the ERP."""
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"outbox kind {kind!r} is not one of {', '.join(OUTBOX_KINDS)}")
    entry.assert_balanced()
    outbox_id, _created = insert_outbox_row(
        session,
        idempotency_key=entry.idempotency_key,
        kind=kind,
        entry=entry_to_json(entry),
        amount=amount,
        cash_amount=cash_amount,
        now=now,
        remittance_id=remittance_id,
        trace_number=trace_number,
        claim_payment_id=claim_payment_id,
        work_item_id=work_item_id,
    )
    return outbox_id
