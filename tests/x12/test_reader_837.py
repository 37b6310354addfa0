"""The 837P/837I reader against the public corpus: counts, amounts and values read by hand."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from claimsync_console.domain import Claim, DocumentKind
from claimsync_console.x12.base import TransactionContext
from claimsync_console.x12.document import DocumentReader, read_document
from claimsync_console.x12.findings import Finding, FindingSink, Severity
from claimsync_console.x12.reader_837 import Claim837Reader
from claimsync_console.x12.tokenizer import tokenize
from tests.x12.corpus import CORPUS_DIR, CorpusFile, corpus_rows

ROWS = [
    row
    for row in corpus_rows()
    if row.transaction_type in ("837P", "837I") and row.is_valid == "well-formed"
]
DEMO_837P = "LinuxForHealth__x12/demo-file__demo.837"
TWO_CLAIMS_837I = (
    "LinuxForHealth__x12/src__tests__resources__837_005010X223A3__two-claims-single-provider.837i"
)
SIMPLE_4010_837I = "azoner__pyx12/test__files__simple_837i.txt"
SIMPLE_4010_837P = "azoner__pyx12/test__files__simple_837p.txt"
PAYER_TO_PAYER = (
    "albmarin__badX12/tests__files__edi__"
    "X222-COB-claim-from-payer-a-to-payer-b-in-payer-to-payer.edi"
)
FOREIGN_SEPARATOR = (
    "LinuxForHealth__x12/src__tests__resources__837_005010X222A2__demo.example11.837"
)

pytestmark = pytest.mark.skipif(not ROWS, reason=f"no X12 corpus at {CORPUS_DIR}")


def _read_bytes(data: bytes, name: str) -> tuple[DocumentReader, list[Claim]]:
    reader = read_document(io.BytesIO(data), name)
    claims = [obj for obj in reader if isinstance(obj, Claim)]
    return reader, claims


def _read(local_file: str) -> tuple[DocumentReader, list[Claim]]:
    return _read_bytes((CORPUS_DIR / local_file).read_bytes(), local_file)


def _clm02_values(path: Path) -> list[str]:
    return [seg.get(2) for seg in tokenize(path.read_bytes()) if seg.id == "CLM"]


def _codes(findings: list[Finding], severity: Severity) -> set[str]:
    return {f.code for f in findings if f.severity is severity}


@pytest.mark.parametrize("row", ROWS, ids=[r.local_file for r in ROWS])
def test_well_formed_837_yields_every_claim_with_exact_billed_amounts(row: CorpusFile) -> None:
    reader, claims = _read(row.local_file)
    assert not reader.has_fatal, [str(f) for f in reader.findings]
    assert len(claims) == row.claim_count
    expected = _clm02_values(row.path)
    assert [c.billed_amount for c in claims] == [Decimal(text) for text in expected]
    for claim in claims:
        assert isinstance(claim.billed_amount, Decimal)
        assert claim.kind.value == row.transaction_type
        assert claim.patient_control_number
        assert claim.lines, "every corpus claim has at least one service line"
        assert all(isinstance(line.charge, Decimal) for line in claim.lines)
        assert claim.segment_start < claim.segment_end


def test_demo_837p_values() -> None:
    reader, claims = _read(DEMO_837P)
    assert reader.findings == []
    (claim,) = claims
    assert claim.patient_control_number == "26463774"
    assert claim.billed_amount == Decimal("100")
    assert (claim.facility_code, claim.facility_code_qualifier, claim.frequency_code) == (
        "11",
        "B",
        "1",
    )
    assert claim.billing_provider_npi == "1912301953"
    assert claim.billing_provider.name == "BEN KILDARE SERVICE"
    assert claim.payer.identifier == "999996666"
    assert claim.claim_filing_indicator == "CI"
    assert claim.subscriber.member_id == "JS00111223333"
    assert claim.patient is not None and claim.patient.date_of_birth == date(1973, 5, 1)
    assert claim.patient_or_subscriber is claim.patient
    assert [line.procedure_code for line in claim.lines] == ["99213", "87070", "99214", "86663"]
    assert [line.charge for line in claim.lines] == [Decimal(v) for v in ("40", "15", "35", "10")]
    assert [line.line_number for line in claim.lines] == [1, 2, 3, 4]
    assert claim.lines[0].procedure_qualifier == "HC"
    assert claim.lines[0].units == Decimal("1.0") and claim.lines[0].unit_basis == "UN"
    # No claim-level DTP*472: the span of the line dates.
    assert (claim.service_date_from, claim.service_date_to) == (
        date(2006, 10, 3),
        date(2006, 10, 10),
    )
    assert claim.references[0].qualifier == "D9"
    assert (claim.segment_start, claim.segment_end) == (28, 42)
    assert claim.transaction_control_number == "0021"


def test_837i_two_claims_close_at_the_next_hl() -> None:
    reader, claims = _read(TWO_CLAIMS_837I)
    assert reader.findings == []
    first, second = claims
    assert (first.patient_control_number, second.patient_control_number) == ("756048Q", "756049Q")
    assert (first.billed_amount, second.billed_amount) == (Decimal("89.95"), Decimal("50.00"))
    assert (first.facility_code, first.facility_code_qualifier, first.frequency_code) == (
        "13",
        "A",
        "1",
    )
    assert [line.revenue_code for line in first.lines] == ["0305", "0730"]
    assert [line.procedure_code for line in first.lines] == ["85025", "93005"]
    assert first.lines[1].units == Decimal("3.00")
    assert first.service_date_from == first.service_date_to == date(2005, 3, 15)
    assert second.service_date_from == date(2005, 4, 1)
    assert first.subscriber.date_of_birth == date(1968, 11, 11)
    assert second.subscriber.member_id == "123405074"
    assert first.patient is None
    assert first.billing_provider_npi == second.billing_provider_npi == "1234567890"
    assert first.kind is DocumentKind.CLAIM_837I
    # The first claim ends on the segment before HL*3 (index 34).
    assert (first.segment_start, first.segment_end) == (21, 33)
    assert (second.segment_start, second.segment_end) == (41, 49)


def test_4010_837i_replacement_keeps_its_own_payer_and_control_number() -> None:
    """The COB loops carry NM1*PR and REF*F8 of other payers; they must not leak in."""
    _, claims = _read(SIMPLE_4010_837I)
    first, second = claims
    assert first.frequency_code == "7"
    assert first.payer_claim_control_number == "12522228"  # the 2300 REF*F8, not 1253278
    assert first.payer.name == "PAYER 2"
    assert first.claim_filing_indicator == "11"
    assert first.subscriber.member_id == "666333444"
    assert first.subscriber.date_of_birth == date(1927, 3, 12)  # not the COB DMG (1957)
    assert (first.service_date_from, first.service_date_to) == (
        date(2003, 12, 13),
        date(2003, 12, 18),
    )
    assert [line.revenue_code for line in first.lines] == ["0100", "0101", "0102"]
    assert first.lines[0].service_date_end == date(2003, 12, 18)
    assert [line.revenue_code for line in second.lines] == ["0103", "0104", "0105"]
    assert second.patient_control_number == "12522229"


def test_4010_837p_modifiers_units_and_imbalance_warning() -> None:
    reader, claims = _read(SIMPLE_4010_837P)
    first, second = claims
    assert first.lines[0].modifiers == ("TT",)
    assert first.lines[0].units == Decimal("12")
    assert first.billing_provider_npi == ""  # 4010 identifies the provider by EIN (24)
    assert first.billing_provider.identifier == "999999999"
    assert len(second.lines) == 3 and second.lines[2].procedure_code == "H2017"
    # CLM02 21 while the lines add up to 42 and 43: a warning per claim, not a failure.
    unbalanced = [f for f in reader.findings if f.code == "claim-lines-unbalanced"]
    assert [f.segment_index for f in unbalanced] == [first.segment_start, second.segment_start]


def test_prior_payer_adjudication_stays_out_of_the_claim() -> None:
    _, (claim,) = _read(PAYER_TO_PAYER)
    assert claim.payer.name == "GREAT PRAIRIES HEALTH"  # not the 2330B KEY INSURANCE COMPANY
    assert claim.subscriber.member_id == "22233444"
    assert claim.claim_filing_indicator == "CI"
    assert claim.rendering_provider_npi == "1999996666"
    assert [line.charge for line in claim.lines] == [Decimal("43"), Decimal("15"), Decimal("21.04")]
    assert claim.payer_claim_control_number == ""
    assert claim.patient is not None and claim.patient.date_of_birth == date(1973, 5, 1)


def test_component_separator_other_than_isa16_is_read_with_a_warning() -> None:
    reader, (claim,) = _read(FOREIGN_SEPARATOR)
    assert (claim.facility_code, claim.facility_code_qualifier, claim.frequency_code) == (
        "11",
        "B",
        "1",
    )
    assert [(line.procedure_code, line.modifiers) for line in claim.lines] == [
        ("E0570", ("RR",)),
        ("A7003", ("NU",)),
    ]
    assert _codes(reader.findings, Severity.WARNING) == {"component-separator"}


def test_bad_amount_and_dates_become_findings_not_exceptions() -> None:
    data = (CORPUS_DIR / DEMO_837P).read_bytes()
    data = data.replace(b"CLM*26463774*100*", b"CLM*26463774*1O0*")
    data = data.replace(b"DTP*472*D8*20061003~\nLX*2", b"DTP*472*D8*2006X003~\nLX*2")
    data = data.replace(b"SV1*HC:87070*15*", b"SV1*HC:87070*abc*")
    data = data.replace(b"HI*BK:0340", b"CLP*26463774*1*100*80~\nHI*BK:0340")
    reader, (claim,) = _read_bytes(data, "mutated.837")
    assert claim.billed_amount == Decimal("0.00")
    assert claim.lines[0].service_date is None
    assert claim.lines[1].charge == Decimal("0.00")
    assert reader.has_fatal
    fatal = [f for f in reader.findings if f.severity is Severity.FATAL]
    assert [(f.segment_id, f.code) for f in fatal] == [("CLM", "bad-amount")]
    assert fatal[0].segment_index == claim.segment_start
    errors = {(f.segment_id, f.code) for f in reader.findings if f.severity is Severity.ERROR}
    assert errors - {("SE", "se-count")} == {("DTP", "bad-date"), ("SV1", "bad-value")}
    (unexpected,) = [f for f in reader.findings if f.code == "unexpected-segment"]
    assert unexpected.severity is Severity.WARNING and "CLP" in unexpected.message


def _feed_fragment(text: str, kind: DocumentKind) -> tuple[list[object], FindingSink]:
    """Feed a bare ST..SE fragment straight to the reader, as document.py would."""
    sink = FindingSink("fragment")
    context = TransactionContext("fragment", "1", "1", "0001", "005010X222A1", "S", "R", 1)
    reader = Claim837Reader(context, sink, kind)
    out: list[object] = []
    for segment in tokenize(text.encode()):
        if segment.id not in ("ST", "SE"):
            out.extend(reader.feed(segment) or [])
    out.extend(reader.finish(0))
    return out, sink


def test_claim_dates_service_lines_without_lx_and_misplaced_segments() -> None:
    fragment = (
        "ST*837*0001*005010X222A1~HL*1**20*1~NM1*85*2*CLINIC*****XX*1111111111~"
        "HL*2*1*22*0~SBR*P*18*******MB~NM1*IL*1*DOE*J****MI*M1~NM1*PR*2*PAYER*****PI*P1~"
        "CLM*A1*30***11:B:8~DTP*431*D8*20200101~DTP*472*RD8*20240102-20240105~REF*F8*ICN9~"
        "SV1*HC:99213:25:59*30*UN*1~SV2*0300*HC:1*5*UN*1~"
        "CLM*A2*5***11:B:1~LX*1~SV1*HC:99211*5*UN*1~DTP*472*D8*20240301~SE*16*0001~"
    )
    out, sink = _feed_fragment(fragment, DocumentKind.CLAIM_837P)
    first, second = out
    assert isinstance(first, Claim) and isinstance(second, Claim)
    assert first.frequency_code == "8" and first.payer_claim_control_number == "ICN9"
    # 431 (onset of illness) is not a service date; the claim-level 472 range is.
    assert (first.service_date_from, first.service_date_to) == (date(2024, 1, 2), date(2024, 1, 5))
    assert first.lines[0].modifiers == ("25", "59")
    assert len(first.lines) == 2  # SV1 and SV2 without LX each open an implicit line
    warnings = [f for f in sink.findings if f.code == "unexpected-segment"]
    assert {f.segment_id for f in warnings} == {"SV1", "SV2"}
    assert second.service_date_from == date(2024, 3, 1)
    assert second.claim_filing_indicator == "MB" and second.payer.identifier == "P1"
