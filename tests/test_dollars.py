"""How money reads in every message: one formatter for the CLI and the console."""

from __future__ import annotations

from decimal import Decimal

import pytest

from claimsync_console.domain import dollars


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0", "$0.00"),
        ("20", "$20.00"),
        ("1234.5", "$1,234.50"),
        ("-12", "-$12.00"),
        ("-0.07", "-$0.07"),
        ("1000000.00", "$1,000,000.00"),
    ],
)
def test_dollars(amount: str, shown: str) -> None:
    assert dollars(Decimal(amount)) == shown
