"""The reader's fast constructors must yield objects indistinguishable from the domain's own."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from claimsync_console.domain import Adjustment, ClaimPayment, DatedValue, PersonName
from claimsync_console.x12.fastbuild import fast_constructor


def test_fast_adjustment_equals_hashes_and_stays_frozen() -> None:
    make = fast_constructor(Adjustment)
    fast = make("CO", "45", Decimal("12.30"), None)
    slow = Adjustment("CO", "45", Decimal("12.30"))
    assert type(fast) is Adjustment
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.amount = Decimal("1")  # type: ignore[misc]
    assert dataclasses.replace(fast, reason_code="97").reason_code == "97"


def test_fast_constructor_applies_declared_defaults() -> None:
    assert fast_constructor(DatedValue)("050", date(2024, 1, 2)) == DatedValue(
        "050", date(2024, 1, 2)
    )
    assert fast_constructor(PersonName)("QC", "DOE") == PersonName("QC", "DOE")


def test_fast_claim_payment_matches_keyword_construction() -> None:
    fields: dict[str, Any] = {
        f.name: f"v{i}" for i, f in enumerate(dataclasses.fields(ClaimPayment))
    }
    fast = fast_constructor(ClaimPayment)(*fields.values())
    assert fast == ClaimPayment(**fields)
    assert dataclasses.asdict(fast) == fields


def test_fast_constructor_refuses_a_class_without_matching_slots() -> None:
    @dataclasses.dataclass(frozen=True)
    class Loose:
        a: int

    with pytest.raises(TypeError):
        fast_constructor(Loose)
