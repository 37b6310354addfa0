"""Journal entries: what the engine posts to the ERP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

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
