"""Cross-check against pyx12's map-aware reader: same claim count and paid total."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from claimsync_console.domain import ClaimPayment
from claimsync_console.x12.document import read_document
from tests.x12.corpus import corpus_rows

pyx12_context = pytest.importorskip("pyx12.x12context")
pyx12_params = pytest.importorskip("pyx12.params")
pyx12_errors = pytest.importorskip("pyx12.error_handler")

WELL_FORMED_835 = [
    r for r in corpus_rows() if r.transaction_type == "835" and r.is_valid == "well-formed"
]


# Files where pyx12 is the one that loses data; we check ours against the INDEX instead.
PYX12_LOSES = {
    "genformai__edi-cli/shared__test-data__sample-835.edi": (
        "BPR05 holds a date, so pyx12's map walker never enters the 2100 loops"
    ),
}


def pyx12_claims(path: Path) -> tuple[int, Decimal]:
    reader = pyx12_context.X12ContextReader(
        pyx12_params.params(), pyx12_errors.errh_null(), str(path)
    )
    count, total = 0, Decimal("0")
    for node in reader.iter_segments("2100"):
        if node.id == "2100":
            count += 1
            total += Decimal(node.get_value("CLP04") or "0")
    return count, total


def ours(path: Path) -> tuple[int, Decimal]:
    with path.open("rb") as handle:
        payments = [o for o in read_document(handle, path.name) if isinstance(o, ClaimPayment)]
    return len(payments), sum((p.paid for p in payments), Decimal("0"))


@pytest.mark.skipif(not WELL_FORMED_835, reason="no corpus")
@pytest.mark.parametrize("row", WELL_FORMED_835, ids=[r.local_file for r in WELL_FORMED_835])
def test_same_claims_and_paid_total_as_pyx12(row) -> None:  # type: ignore[no-untyped-def]
    if row.notes.startswith("no version") or "NO ISA" in row.notes:
        pytest.skip("pyx12 needs an ISA envelope and a version to pick its map")
    if row.local_file in PYX12_LOSES:
        assert pyx12_claims(row.path)[0] < row.claim_count, "pyx12 now reads it: drop the entry"
        assert ours(row.path)[0] == row.claim_count
        return
    assert ours(row.path) == pyx12_claims(row.path)
