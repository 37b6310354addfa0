"""Column types that keep money exact and times in UTC on every backend.

SQLite has no decimal type (NUMERIC columns hold floats) and no time zones, so money is stored
as integer cents and times as naive UTC; the Python side always sees ``Decimal`` and aware
``datetime``. The same types on PostgreSQL keep both backends byte-for-byte comparable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, String
from sqlalchemy.types import TypeDecorator

from claimsync_console.domain.common import CENT

#: Primary keys: BIGINT on PostgreSQL, INTEGER on SQLite (the only type that autoincrements).
IdType = BigInteger().with_variant(Integer(), "sqlite")


#: Cents must fit a signed 64-bit column; anything this large is a bad file, not money (and
#: ``quantize`` raises on it rather than answer).
MAX_MONEY = Decimal(10) ** 16


class MoneyPrecisionError(ValueError):
    """An amount that cannot be stored as whole cents (a float, or a sub-cent fraction)."""


def to_cents(value: Decimal | int) -> int:
    """Exact cents for an amount; raises rather than round, because rounding loses money.

    Every stored amount passes here twice (the row check and the column type), so an ordinary
    Decimal takes the short way: below 10**16 (``adjusted() < 16``) its cents have at most 18
    digits, so ``quantize`` and ``scaleb`` are exact. Anything else gets the checks with their
    messages."""
    if type(value) is Decimal and value.is_finite() and value.adjusted() < 16:
        whole_cents = value.quantize(CENT)
        if whole_cents == value:
            return int(whole_cents.scaleb(2))
    return _checked_cents(value)


def _checked_cents(value: Decimal | int) -> int:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise MoneyPrecisionError(f"money must be a Decimal, got {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite():
        raise MoneyPrecisionError(f"money must be finite, got {amount}")
    if abs(amount) >= MAX_MONEY:
        raise MoneyPrecisionError(f"amount {amount} is too large to store")
    if amount != amount.quantize(CENT):
        raise MoneyPrecisionError(f"amount {amount} has a fraction of a cent")
    return int(amount.scaleb(2))


def from_cents(cents: int | Decimal) -> Decimal:
    return (Decimal(cents).scaleb(-2)).quantize(CENT)


class Money(TypeDecorator[Decimal]):
    """Decimal amounts stored as BIGINT cents, so SUM() is exact on SQLite and PostgreSQL."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return to_cents(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        # PostgreSQL returns SUM(bigint) as numeric (Decimal); SQLite returns int.
        if value is None:
            return None
        return from_cents(value)

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("times must be timezone-aware datetimes")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


class DecimalText(TypeDecorator[Decimal]):
    """Quantities (units, CAS quantity) kept exactly as text: shown, never summed in SQL."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, float) or not isinstance(value, Decimal | int):
            raise TypeError(f"quantities must be Decimal, got {type(value).__name__}")
        return str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        try:
            return Decimal(value)
        except InvalidOperation as exc:  # only if someone wrote the column by hand
            raise ValueError(f"stored quantity {value!r} is not a decimal") from exc

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal
