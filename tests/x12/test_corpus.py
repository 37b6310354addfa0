"""Every file of the public corpus either parses or is rejected with a clear finding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from claimsync_console.domain import Claim, ClaimPayment, ClaimStatus, DocumentKind
from claimsync_console.x12.document import READER_ERROR, read_document
from claimsync_console.x12.findings import Severity
from tests.x12.corpus import CORPUS_DIR, corpus_rows

ROWS = [row for row in corpus_rows() if not row.is_reference_data]

pytestmark = pytest.mark.skipif(not ROWS, reason=f"no X12 corpus at {CORPUS_DIR}")


def _read(row):  # type: ignore[no-untyped-def]
    with row.path.open("rb") as handle:
        reader = read_document(handle, row.local_file)
        objects = list(reader)
    return reader, objects


@pytest.mark.parametrize("row", ROWS, ids=[r.local_file for r in ROWS])
def test_corpus_file_parses_or_is_rejected_with_a_finding(row) -> None:  # type: ignore[no-untyped-def]
    reader, objects = _read(row)
    for finding in reader.findings:
        assert finding.file == row.local_file
        assert finding.message
        assert finding.segment_index >= 0
        assert finding.code != READER_ERROR, finding  # the safety net, not a rejection
    if reader.has_fatal:
        fatal = reader.sink.first_fatal()
        assert fatal is not None and fatal.message
        # A file we refuse must be one the index marks as broken, unsupported or doubtful.
        assert row.is_valid != "well-formed" or row.transaction_type not in (
            "835",
            "837P",
            "837I",
            "277CA",
        ), f"well-formed {row.transaction_type} rejected: {fatal}"
        return
    claims = [o for o in objects if isinstance(o, Claim)]
    payments = [o for o in objects if isinstance(o, ClaimPayment)]
    statuses = [o for o in objects if isinstance(o, ClaimStatus)]
    if row.transaction_type == "835":
        assert reader.kind is DocumentKind.REMITTANCE_835
        if row.claim_count is not None:
            assert len(payments) == row.claim_count
        assert all(isinstance(p.paid, Decimal) for p in payments)
    elif row.transaction_type in ("837P", "837I"):
        assert reader.kind.value == row.transaction_type
        if row.claim_count is not None:
            assert len(claims) == row.claim_count
    elif row.transaction_type == "277CA":
        assert reader.kind is DocumentKind.STATUS_277CA
        assert statuses


def test_well_formed_835s_balance_where_the_index_says_they_balance() -> None:
    checked = 0
    for row in ROWS:
        if row.transaction_type != "835" or row.is_valid != "well-formed":
            continue
        if "BPR02 = sum(CLP04) - sum(PLB): balances" not in row.notes:
            continue
        reader, _ = _read(row)
        codes = {f.code for f in reader.findings}
        assert "payment-out-of-balance" not in codes, row.local_file
        checked += 1
    assert checked >= 10


def test_deliberately_broken_envelopes_are_fatal() -> None:
    broken = {
        "albmarin__badX12/tests__files__errors__error_validation.edi": "control-number",
        "tastypackets__x12-parser/test__testFiles__errorISA.edi": "control-number",
        "albmarin__badX12/tests__files__errors__bad_file.edi": "not-x12",
        "azoner__pyx12/test__files__fail_no_IEA.txt": "missing-iea",
    }
    for name, code in broken.items():
        row = next(r for r in ROWS if r.local_file == name)
        reader, _ = _read(row)
        fatal_codes = {f.code for f in reader.findings if f.severity is Severity.FATAL}
        assert code in fatal_codes, (name, reader.findings)
