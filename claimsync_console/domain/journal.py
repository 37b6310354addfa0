"""Journal entries: what the engine posts to the ERP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from claimsync_console.domain.common import ZERO


class UnbalancedEntryError(ValueError):
    """Raised before anything is posted when debits and credits differ."""


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One line; exactly one of debit and credit is non-zero."""

    account: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    cost_centre: str = ""
    memo: str = ""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A balanced entry. ``idempotency_key`` is derived from the source and never changes."""

    idempotency_key: str
    entry_date: date
    description: str
    lines: tuple[JournalLine, ...]
    reference: str = ""

    @property
    def total_debit(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)

    @property
    def is_balanced(self) -> bool:
        return self.total_debit == self.total_credit

    def assert_balanced(self) -> None:
        if not self.lines:
            raise UnbalancedEntryError(f"entry {self.idempotency_key} has no lines")
        if not self.is_balanced:
            raise UnbalancedEntryError(
                f"entry {self.idempotency_key}: debits {self.total_debit} "
                f"!= credits {self.total_credit}"
            )
        for line in self.lines:
            if line.debit < ZERO or line.credit < ZERO:
                raise UnbalancedEntryError(
                    f"entry {self.idempotency_key}: negative amount on {line.account}"
                )


def entry_to_dict(entry: JournalEntry) -> dict[str, Any]:
    """A JSON-ready dict shared by the outbox store and the ERP wire, so both encode alike.

    Amounts are decimal strings, never JSON numbers: a float would round cents, while
    ``str(Decimal)`` round-trips exactly, exponent included. Changing the shape changes stored
    outbox rows too: bump ``engine.outbox.ENTRY_FORMAT`` and keep reading the old one.
    """
    return {
        "idempotency_key": entry.idempotency_key,
        "entry_date": entry.entry_date.isoformat(),
        "description": entry.description,
        "reference": entry.reference,
        "lines": [
            {
                "account": line.account,
                "debit": str(line.debit),
                "credit": str(line.credit),
                "cost_centre": line.cost_centre,
                "memo": line.memo,
            }
            for line in entry.lines
        ],
    }
