"""The X12 writers: envelopes, segment splitting, pyx12 validity, and a round trip through the
project's own reader."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from claimsync_console.domain import (
    Adjustment,
    Amount,
    Claim,
    ClaimPayment,
    ClaimStatus,
    DatedValue,
    DocumentKind,
    Party,
    PersonName,
    ProviderAdjustment,
    Reference,
    RemittanceHeader,
    ServiceLine,
    ServicePayment,
    StatusCategoryClass,
    StatusCode,
)
from claimsync_console.x12.document import read_document
from claimsync_console.x12.findings import Severity
from claimsync_console.x12.tokenizer import Segment, tokenize
from claimsync_console.x12.writer import (
    Address,
    ClaimRecord,
    Envelope,
    RemittanceExtras,
    StatusRecord,
    Submitter,
    amount,
    isa,
    write_277ca,
    write_835,
    write_837,
)
from tests.pyx12_support import pyx12_problems

D = Decimal
ENVELOPE = Envelope("SENDER", "RECEIVER", 4711, datetime(2026, 1, 5, 9, 30, tzinfo=UTC))
ADDRESS = Address("1 MAIN STREET", "SPRINGFIELD", "IL", "627010001")
CLINIC = Party("SAMPLE CLINIC", "XX", "1234567893")
PAYER = Party("SAMPLE PAYER", "PI", "SMP01")
SUBMITTER = Submitter("SAMPLE CLINIC", "SUB01")
RECEIVER = Party("SAMPLE CLEARINGHOUSE", "46", "CH01")


def segments(text: str) -> list[Segment]:
    return list(tokenize(text.encode("ascii")))


def payment(pcn: str = "PCN1", **changes: object) -> ClaimPayment:
    line = ServicePayment(
        "HC", "99213", ("25",), D("100.00"), D("70.00"), units_paid=D(1),
        adjustments=(Adjustment("CO", "45", D("20.00")), Adjustment("PR", "2", D("10.00"))),
        references=(Reference("6R", "1"),), dates=(DatedValue("472", date(2025, 12, 1)),),
        amounts=(Amount("B6", D("80.00")),), remark_codes=("N290",),
    )  # fmt: skip
    base = ClaimPayment(
        pcn, "1", D("100.00"), D("70.00"), D("10.00"), "12", "ICN1", "11", "1",
        services=(line,), patient=PersonName("QC", "DOE", "JANE", "", "MI", "W123"),
        dates=(DatedValue("232", date(2025, 12, 1)),), amounts=(Amount("AU", D("80.00")),),
        outpatient_remarks=("MA130",),
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def header(paid: Decimal, method: str = "ACH") -> RemittanceHeader:
    return RemittanceHeader(
        "4711", "4711", "0001", "005010X221A1", "SENDER", "RECEIVER", "I", paid, "C", method,
        "CCP", date(2026, 1, 20), "1", "TRACE1", "1999999999", Party("SAMPLE PAYER"), CLINIC,
        production_date=date(2026, 1, 19),
    )  # fmt: skip


def remittance(payments: list[ClaimPayment], plbs: list[ProviderAdjustment], paid: Decimal) -> str:
    extras = RemittanceExtras(ADDRESS, payer_reference="SMP01", payee_tax_id="361111111")
    return write_835(ENVELOPE, header(paid), payments, plbs, extras)


def claim_record(pcn: str, **changes: object) -> ClaimRecord:
    subscriber = PersonName("IL", "DOE", "JOHN", "", "MI", "W123", date(1970, 1, 1))
    claim = Claim(
        DocumentKind.CLAIM_837P, pcn, D("150.00"), PAYER, subscriber, None, CLINIC,
        CLINIC.identifier, "1234567893", "11", "B", "1", date(2025, 12, 1), date(2025, 12, 1),
        lines=(
            ServiceLine(1, "HC", "99213", ("25",), D("100.00"), D(1)),
            ServiceLine(2, "HC", "36415", (), D("50.00"), D(2)),
        ),
        claim_filing_indicator="CI",
    )  # fmt: skip
    claim = replace(claim, **changes)  # type: ignore[arg-type]
    rendering = PersonName("82", "SMITH", "ANN")
    return ClaimRecord(claim, ADDRESS, "361111111", ADDRESS, ("E119", "I10"), "M", "F",
                       rendering_provider=rendering)  # fmt: skip


# -- envelope ---------------------------------------------------------------------------------


def test_isa_is_fixed_width_and_trailers_match_the_headers() -> None:
    text = remittance([payment()], [], D("70.00"))
    assert len(isa(ENVELOPE).rstrip("\n")) == 106
    assert text.startswith(isa(ENVELOPE))
    segs = segments(text)
    ids = [s.id for s in segs]
    assert ids[:3] == ["ISA", "GS", "ST"] and ids[-3:] == ["SE", "GE", "IEA"]
    st, se = ids.index("ST"), ids.index("SE")
    assert int(segs[se].get(1)) == se - st + 1  # SE01 counts ST..SE
    assert segs[se].get(2) == segs[st].get(2)
    assert segs[-2].get(2) == segs[1].get(6) == "4711"
    assert segs[-1].get(2) == segs[0].get(13) == "000004711"
    assert all(line.endswith("~") for line in text.splitlines())


def test_same_input_gives_the_same_bytes() -> None:
    first = remittance([payment()], [], D("70.00"))
    assert remittance([payment()], [], D("70.00")) == first
    later = replace(ENVELOPE, control_number=4712)
    assert write_835(later, header(D("70.00")), [payment()]) != first


def test_amounts_never_print_a_negative_zero() -> None:
    assert amount(D("-0.00")) == "0"
    assert amount(D("0")) == "0"
    assert amount(D("-12.5")) == "-12.50"
    assert amount(D("3")) == "3.00"


# -- 835 --------------------------------------------------------------------------------------


def test_835_is_valid_for_pyx12_and_drops_trailing_empty_elements() -> None:
    plbs = [
        ProviderAdjustment("1234567893", date(2026, 12, 31), "L6", "ICN1", D("-5.00")),
        ProviderAdjustment("1234567893", date(2026, 12, 31), "WO", "ICN0", D("10.00")),
    ]
    text = remittance([payment()], plbs, D("65.00"))
    assert pyx12_problems(text) == []
    lines = text.splitlines()
    assert "CLP*PCN1*1*100.00*70.00*10.00*12*ICN1*11*1~" in lines
    assert "PLB*1234567893*20261231*L6:ICN1*-5.00*WO:ICN0*10.00~" in lines
    assert "MOA***MA130~" in lines and "LQ*HE*N290~" in lines


def test_more_than_six_triplets_open_another_cas_and_groups_stay_apart() -> None:
    many = tuple(Adjustment("CO", str(40 + i), D("1.00")) for i in range(8))
    claim = payment(
        charge=D("110.00"), paid=D("90.00"),
        adjustments=(*many, Adjustment("PR", "1", D("2.00")), Adjustment("OA", "23", D("8.00"))),
        services=(), outpatient_remarks=(),
    )  # fmt: skip
    text = remittance([claim], [], D("90.00"))
    cas = [s for s in segments(text) if s.id == "CAS"]
    assert [s.get(1) for s in cas] == ["CO", "CO", "PR", "OA"]
    six = "**".join(f"{code}*1.00" for code in range(40, 46))
    assert cas[0].raw() == f"CAS*CO*{six}"  # six triplets; only the trailing quantity drops
    assert cas[1].raw() == "CAS*CO*46*1.00**47*1.00"
    assert pyx12_problems(text) == []


def test_plb_holds_six_pairs_and_splits_by_provider_and_fiscal_date() -> None:
    end = date(2026, 12, 31)
    plbs = [ProviderAdjustment("1234567893", end, "WO", f"R{i}", D("1.00")) for i in range(7)]
    plbs.append(ProviderAdjustment("1234567893", date(2025, 12, 31), "FB", "", D("2.00")))
    text = remittance([payment()], plbs, D("70.00") - D("9.00"))
    plb = [s for s in segments(text) if s.id == "PLB"]
    assert [len(s.elements) for s in plb] == [15, 5, 5]
    assert plb[1].get(3) == "WO:R6" and plb[2].get(2) == "20251231" and plb[2].get(3) == "FB"
    # The TR3 lets PLB repeat, but pyx12's map counts every PLB as another FOOTER loop; that is
    # the only thing it may say here (the generator never needs a second PLB per check).
    problems = pyx12_problems(text)
    assert len(problems) == 2
    assert all("Loop FOOTER exceeded max count" in p for p in problems)


def test_zero_check_is_a_notification_without_bank_details() -> None:
    denied = payment(
        status_code="4", paid=D("0"), patient_responsibility=D("0"), amounts=(),
        adjustments=(Adjustment("CO", "50", D("100.00")),), services=(), outpatient_remarks=(),
    )  # fmt: skip
    head = replace(header(D("0")), handling_code="H", payment_method="NON", payment_format="")
    text = write_835(ENVELOPE, head, [denied], (), RemittanceExtras(ADDRESS))
    assert "BPR*H*0*C*NON************20260120~" in text.splitlines()
    assert pyx12_problems(text) == []


def test_835_round_trips_through_the_project_reader() -> None:
    reversal = payment(
        "PCN2", status_code="22", charge=D("-100.00"), paid=D("-70.00"),
        patient_responsibility=D("-10.00"), amounts=(),
        services=(replace(payment().services[0], charge=D("-100.00"), paid=D("-70.00"),
                          adjustments=(Adjustment("CO", "45", D("-20.00")),
                                       Adjustment("PR", "2", D("-10.00"))), amounts=()),),
    )  # fmt: skip
    original = payment(insured=PersonName("IL", "DOE", "JOHN", "", "MI", "W999"))
    plb = ProviderAdjustment("1234567893", date(2026, 12, 31), "L6", "ICN1", D("-1.50"))
    text = remittance([original, reversal], [plb], D("1.50"))
    reader = read_document(text.encode("ascii"), "roundtrip.835")
    objects = list(reader)
    assert [f for f in reader.findings if f.severity in (Severity.ERROR, Severity.FATAL)] == []
    read = [o for o in objects if isinstance(o, ClaimPayment)]
    assert [(p.patient_control_number, p.status_code, p.charge, p.paid) for p in read] == [
        ("PCN1", "1", D("100.00"), D("70.00")),
        ("PCN2", "22", D("-100.00"), D("-70.00")),
    ]
    first = read[0]
    assert first.services[0].adjustments == original.services[0].adjustments
    assert first.services[0].modifiers == ("25",) and first.services[0].remark_codes == ("N290",)
    assert first.outpatient_remarks == ("MA130",) and first.insured is not None
    assert first.insured.member_id == "W999" and first.patient is not None
    assert first.patient.last_name == "DOE"
    assert read[1].services[0].adjustment_total == D("-30.00")


# -- 837 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [DocumentKind.CLAIM_837P, DocumentKind.CLAIM_837I])
def test_837_is_valid_for_pyx12(kind: DocumentKind) -> None:
    dependent = PersonName("QC", "DOE", "JIM", date_of_birth=date(2015, 3, 1))
    records = [claim_record("PCN1"), claim_record("PCN2", patient=dependent)]
    if kind is DocumentKind.CLAIM_837I:
        lines = (
            ServiceLine(1, "HC", "99284", (), D("100.00"), D(1), revenue_code="0450"),
            ServiceLine(2, "", "", (), D("50.00"), D(2), revenue_code="0250"),
        )
        records = [replace(r, claim=replace(r.claim, kind=kind, facility_code="13",
                                            facility_code_qualifier="A", lines=lines))
                   for r in records]  # fmt: skip
    text = write_837(records, kind, ENVELOPE, SUBMITTER, RECEIVER, "BATCH1")
    assert pyx12_problems(text) == []


def test_837_hierarchy_opens_provider_and_patient_levels_only_when_needed() -> None:
    other = Party("OTHER CLINIC", "XX", "1234567919")
    dependent = PersonName("QC", "DOE", "JIM", date_of_birth=date(2015, 3, 1))
    records = [
        claim_record("PCN1"),
        claim_record("PCN2", patient=dependent),
        claim_record("PCN3", billing_provider=other, billing_provider_npi=other.identifier),
    ]
    text = write_837(records, DocumentKind.CLAIM_837P, ENVELOPE, SUBMITTER, RECEIVER, "B1")
    hls = [(s.get(1), s.get(2), s.get(3), s.get(4)) for s in segments(text) if s.id == "HL"]
    assert hls == [
        ("1", "", "20", "1"), ("2", "1", "22", "0"), ("3", "1", "22", "1"), ("4", "3", "23", "0"),
        ("5", "", "20", "1"), ("6", "5", "22", "0"),
    ]  # fmt: skip
    lines = text.splitlines()
    assert "CLM*PCN1*150.00***11:B:1*Y*A*Y*Y~" in lines
    assert "SV1*HC:36415*50.00*UN*2***1~" in lines
    assert "SBR*P*18*******CI~" in lines and "SBR*P********CI~" in lines
    read = [o for o in read_document(text.encode(), "b1.837") if isinstance(o, Claim)]
    assert [c.patient_control_number for c in read] == ["PCN1", "PCN2", "PCN3"]
    assert [c.billed_amount for c in read] == [D("150.00")] * 3


def test_837i_replacement_carries_frequency_7_and_ref_f8() -> None:
    lines = (ServiceLine(1, "HC", "99284", (), D("150.00"), D(1), revenue_code="0450"),)
    record = claim_record("PCN9", kind=DocumentKind.CLAIM_837I, facility_code="13",
                          facility_code_qualifier="A", frequency_code="7",
                          payer_claim_control_number="ICN42", lines=lines,
                          service_date_to=date(2025, 12, 3))  # fmt: skip
    text = write_837([record], DocumentKind.CLAIM_837I, ENVELOPE, SUBMITTER, RECEIVER, "R1")
    lines_out = text.splitlines()
    assert "CLM*PCN9*150.00***13:A:7**A*Y*Y~" in lines_out
    assert "DTP*434*RD8*20251201-20251203~" in lines_out
    assert "REF*F8*ICN42~" in lines_out and "SV2*0450*HC:99284*150.00*UN*1~" in lines_out
    assert pyx12_problems(text) == []
    (claim,) = [o for o in read_document(text.encode(), "r1.837") if isinstance(o, Claim)]
    assert claim.frequency_code == "7" and claim.payer_claim_control_number == "ICN42"


def test_837_writer_refuses_other_kinds() -> None:
    with pytest.raises(ValueError, match="not an 837"):
        write_837([], DocumentKind.REMITTANCE_835, ENVELOPE, SUBMITTER, RECEIVER)


# -- 277CA ------------------------------------------------------------------------------------


def test_277ca_groups_by_payer_and_marks_rejections() -> None:
    patient = PersonName("QC", "DOE", "JANE", "", "MI", "W123")
    accepted = ClaimStatus("PCN1", "ICN1", StatusCategoryClass.ACCEPTED,
                           (StatusCode("A2", "20", "PR"),), date(2026, 1, 6), D("100.00"),
                           PAYER, patient)  # fmt: skip
    rejected = replace(
        accepted, patient_control_number="PCN2", payer_claim_control_number="",
        status=StatusCategoryClass.REJECTED,
        codes=(StatusCode("A7", "164", "IL"), StatusCode("A7", "187")),
    )  # fmt: skip
    other = replace(accepted, patient_control_number="PCN3", payer=Party("B PAYER", "PI", "B1"))
    day = date(2025, 12, 1)
    statuses = [
        StatusRecord(accepted, CLINIC, day, day),
        StatusRecord(rejected, CLINIC, day, date(2025, 12, 3)),
        StatusRecord(other, CLINIC, day, day),
    ]
    text = write_277ca(statuses, ENVELOPE, SUBMITTER, "B1")
    assert pyx12_problems(text) == []
    lines = text.splitlines()
    assert [s.get(3) for s in segments(text) if s.id == "HL"] == [
        "20", "21", "19", "PT", "PT", "20", "21", "19", "PT",
    ]  # fmt: skip
    assert "STC*A7:164:IL*20260106*U*100.00******A7:187~" in lines
    assert "STC*A2:20:PR*20260106*WQ*100.00~" in lines and "REF*1K*ICN1~" in lines
    assert "STC*A1:19:PR*20260105*WQ*200.00~" in lines  # the first payer's two claims
    read = [o for o in read_document(text.encode(), "b1.277") if isinstance(o, ClaimStatus)]
    assert [(s.patient_control_number, s.accepted) for s in read] == [
        ("PCN1", True), ("PCN2", False), ("PCN3", True),
    ]  # fmt: skip
