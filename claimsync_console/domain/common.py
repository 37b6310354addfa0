"""Value types shared by claims and remittances.

Money is always ``Decimal``; a float never enters the domain, because cents must add up
exactly across millions of postings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def money(value: str | int | Decimal) -> Decimal:
    """Normalise an amount to cents without going through float."""
    if isinstance(value, float):  # defensive: callers must never pass floats
        raise TypeError("money must not be a float")
    return Decimal(value).quantize(CENT)


def dollars(amount: Decimal) -> str:
    """``$1,234.50``, ``-$12.00``: money as every message and screen shows it to a person."""
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


class DocumentKind(enum.StrEnum):
    """What an X12 file carries, as the ingest report names it."""

    REMITTANCE_835 = "835"
    CLAIM_837P = "837P"
    CLAIM_837I = "837I"
    STATUS_277CA = "277CA"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PersonName:
    """A person from an NM1 segment; every field here is PHI except the entity code."""

    entity_code: str
    last_name: str = ""
    first_name: str = ""
    middle_name: str = ""
    id_qualifier: str = ""
    member_id: str = ""
    date_of_birth: date | None = None

    @property
    def display_name(self) -> str:
        return ", ".join(p for p in (self.last_name, self.first_name) if p)


@dataclass(frozen=True, slots=True)
class Party:
    """An organisation (payer, payee, billing provider) and its identifier."""

    name: str = ""
    id_qualifier: str = ""
    identifier: str = ""


@dataclass(frozen=True, slots=True)
class Reference:
    """A REF segment: qualifier and value."""

    qualifier: str
    value: str


@dataclass(frozen=True, slots=True)
class DatedValue:
    """A DTM/DTP segment: qualifier and date (the first date of a range)."""

    qualifier: str
    value: date | None
    end: date | None = None


@dataclass(frozen=True, slots=True)
class Amount:
    """An AMT segment: qualifier and amount."""

    qualifier: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Quantity:
    """A QTY segment: qualifier and quantity."""

    qualifier: str
    quantity: Decimal
