"""The 835 reader keeps every piece of semantics that popular peers lose."""

from __future__ import annotations

import codecs
from datetime import date
from decimal import Decimal

import pytest

from claimsync_console.domain import ClaimPayment, RemittanceHeader, RemittanceTrailer
from claimsync_console.x12.document import read_document
from claimsync_console.x12.findings import Severity


def isa(
    control: str = "000000905", element: str = "*", component: str = ":", rep: str = "^"
) -> str:
    fields = [
        "ISA",
        "00",
        " " * 10,
        "00",
        " " * 10,
        "ZZ",
        "PAYERSENDER    ",
        "ZZ",
        "PROVIDERRCV    ",
        "260105",
        "1200",
        rep,
        "00501",
        control,
        "0",
        "P",
        component,
    ]
    text = element.join(fields)
    assert len(text) == 105
    return text


def envelope(
    body: list[str], control: str = "000000905", version: str = "005010X221A1"
) -> list[str]:
    segments = [f"ST*835*0001*{version}", *body]
    return [
        isa(control),
        f"GS*HP*PAYERSENDER*PROVIDERRCV*20260105*1200*7*X*{version}",
        *segments,
        f"SE*{len(segments) + 1}*0001",
        "GE*1*7",
        f"IEA*1*{control}",
    ]


HEADER = [
    "BPR*I*1064.50*C*ACH*CCP*01*999999992*DA*123456*1512345678**01*999988880*DA*98765*20260110",
    "TRN*1*EFT0001*1512345678",
    "DTM*405*20260108",
    "N1*PR*ACME HEALTH PLAN",
    "N3*1 PAYER WAY",
    "N4*HARTFORD*CT*06101",
    "REF*2U*ACME01",
    "N1*PE*GENERAL HOSPITAL*XX*1234567893",
    "REF*TJ*111223333",
]

# Claim A: six CAS triplets in one segment plus a second CAS segment, MOA, AMT, QTY, names.
CLAIM_A = [
    "LX*1",
    "CLP*PCN-A*1*1000.00*600.00*50.00*MC*PAYER-A1*11*1",
    "CAS*CO*45*100.00**253*10.00**94*20.00**97*30.00**16*40.00**131*50.00",
    "CAS*PR*1*50.00*1",
    "CAS*OA*23*100.00",
    "NM1*QC*1*DOE*JANE*Q***MI*MEMBER123",
    "NM1*IL*1*DOE*JOHN****MI*SUBSCR9",
    "NM1*74*1*DOE*JANET",
    "MOA***MA130*N290",
    "REF*EA*MRN77",
    "DTM*232*20260101",
    "DTM*233*20260102",
    "AMT*AU*900.00",
    "QTY*CA*2",
]
# Claim B: line-level CAS under two SVC loops, MIA.
CLAIM_B = [
    "CLP*PCN-B*2*300.00*200.00**13*PAYER-B1*21",
    "MIA*0***120.00****************M1",
    "SVC*HC:99213:25*200.00*150.00**1",
    "DTM*472*20260103",
    "CAS*CO*45*50.00",
    "REF*6R*LINE1",
    "AMT*B6*150.00",
    "LQ*HE*N130",
    "SVC*HC:80053*100.00*50.00**1",
    "CAS*PR*2*50.00",
]
# Claims C/D: a reversal and its correction (same CLP07).
REVERSAL_PAIR = [
    "CLP*PCN-C*22*-500.00*-400.00**MC*PAYER-C1",
    "CAS*CO*45*-100.00",
    "CLP*PCN-C*1*500.00*450.00**MC*PAYER-C1",
    "CAS*CO*45*50.00",
]
# Σ CLP04 = 600 + 200 - 400 + 450 = 850; PLB: -250 (interest adds), +35.50 recoupment
PLBS = [
    "PLB*1234567893*20261231*L6:INT01*-250.00",
    "PLB*1234567893*20261231*WO:RECOUP9*35.50",
]


def good_835(**kwargs: str) -> bytes:
    lines = envelope(HEADER + CLAIM_A + CLAIM_B + REVERSAL_PAIR + PLBS, **kwargs)
    return ("~\n".join(lines) + "~\n").encode()


def read(data: bytes):  # type: ignore[no-untyped-def]
    reader = read_document(data, "test.835")
    return reader, list(reader)


def test_full_semantics_survive() -> None:
    reader, objects = read(good_835())
    assert not [f for f in reader.findings if f.severity in (Severity.ERROR, Severity.FATAL)], (
        reader.findings
    )
    header = objects[0]
    assert isinstance(header, RemittanceHeader)
    assert header.payment_amount == Decimal("1064.50")
    assert header.payment_method == "ACH"
    assert header.trace_number == "EFT0001"
    assert header.payment_date == date(2026, 1, 10)
    assert header.payer.name == "ACME HEALTH PLAN" and header.payer.identifier == "ACME01"
    assert header.payee.identifier == "1234567893"
    assert header.interchange_control_number == "000000905"
    payments = [o for o in objects if isinstance(o, ClaimPayment)]
    assert [p.patient_control_number for p in payments] == ["PCN-A", "PCN-B", "PCN-C", "PCN-C"]

    a = payments[0]
    assert [(x.group, x.reason_code, x.amount) for x in a.adjustments] == [
        ("CO", "45", Decimal("100.00")),
        ("CO", "253", Decimal("10.00")),
        ("CO", "94", Decimal("20.00")),
        ("CO", "97", Decimal("30.00")),
        ("CO", "16", Decimal("40.00")),
        ("CO", "131", Decimal("50.00")),
        ("PR", "1", Decimal("50.00")),
        ("OA", "23", Decimal("100.00")),
    ]
    assert a.adjustments[6].quantity == Decimal("1")
    assert (
        a.patient is not None
        and a.patient.last_name == "DOE"
        and a.patient.member_id == "MEMBER123"
    )
    assert a.insured is not None and a.insured.member_id == "SUBSCR9"
    assert a.corrected_patient is not None and a.corrected_patient.first_name == "JANET"
    assert a.outpatient_remarks == ("MA130", "N290")
    assert [(r.qualifier, r.value) for r in a.references] == [("EA", "MRN77")]
    assert [d.value for d in a.dates] == [date(2026, 1, 1), date(2026, 1, 2)]
    assert a.amounts[0].amount == Decimal("900.00") and a.quantities[0].quantity == Decimal("2")
    assert a.facility_code == "11" and a.frequency_code == "1"

    b = payments[1]
    assert b.status_code == "2" and b.inpatient_remarks == ("M1",)
    assert [s.procedure_code for s in b.services] == ["99213", "80053"]
    assert b.services[0].modifiers == ("25",)
    assert b.services[0].remark_codes == ("N130",)
    assert b.services[0].references[0].value == "LINE1"
    assert b.services[1].adjustments[0].group == "PR"
    assert b.adjustment_total == Decimal("100.00")

    reversal, correction = payments[2], payments[3]
    assert reversal.is_reversal and not correction.is_reversal
    assert reversal.payer_claim_control_number == correction.payer_claim_control_number
    assert reversal.paid == Decimal("-400.00")

    trailer = objects[-1]
    assert isinstance(trailer, RemittanceTrailer)
    assert [(p.reason_code, p.reference, p.amount) for p in trailer.provider_adjustments] == [
        ("L6", "INT01", Decimal("-250.00")),
        ("WO", "RECOUP9", Decimal("35.50")),
    ]
    assert trailer.paid_total == Decimal("850.00")
    assert trailer.claim_payment_count == 4


def test_positions_point_at_the_clp_loop() -> None:
    _, objects = read(good_835())
    a = next(o for o in objects if isinstance(o, ClaimPayment))
    # ISA=1, GS=2, ST=3, 9 header segments, LX=13, CLP=14
    assert a.segment_start == 14
    assert a.segment_end == 14  # no SVC loop: the claim is positioned by its CLP


def test_balancing_failures_are_findings_with_positions() -> None:
    data = good_835().replace(b"CAS*CO*45*50.00~\nREF*6R", b"CAS*CO*45*40.00~\nREF*6R")
    data = data.replace(b"BPR*I*1064.50", b"BPR*I*1064.51")
    reader, objects = read(data)
    by_code = {f.code: f for f in reader.findings}
    assert by_code["line-out-of-balance"].segment_id == "SVC"
    assert by_code["claim-out-of-balance"].segment_id == "CLP"
    assert by_code["payment-out-of-balance"].segment_index == 4
    assert not reader.has_fatal
    assert sum(isinstance(o, ClaimPayment) for o in objects) == 4


def test_tolerates_crlf_bom_indentation_and_utf16() -> None:
    text = good_835().decode()
    variants = [
        text.replace("~\n", "~\r\n").encode(),
        codecs.BOM_UTF8 + text.encode(),
        text.replace("~\n", "~\n    ").encode(),
        text.encode("utf-16"),
        text.replace("~\n", "~").encode(),
    ]
    for data in variants:
        reader, objects = read(data)
        assert not reader.has_fatal, reader.findings
        assert sum(isinstance(o, ClaimPayment) for o in objects) == 4


def test_newline_terminated_segments() -> None:
    text = good_835().decode()
    isa_line = text.split("~\n", 1)[0]
    rest = text.split("~\n", 1)[1].replace("~\n", "\n")
    reader, objects = read((isa_line + "\n" + rest).encode())
    assert not reader.has_fatal, reader.findings
    assert sum(isinstance(o, ClaimPayment) for o in objects) == 4


def test_several_interchanges_with_different_delimiters() -> None:
    first = good_835().decode()
    second_lines = envelope(HEADER + CLAIM_A, control="000000906")
    second = "|".join(second_lines).replace("*", "!")  # terminator '|', element '!'
    second = second.replace("ISA!", "ISA!", 1) + "|"
    reader, objects = read((first + second).encode())
    assert not reader.has_fatal, reader.findings
    headers = [o for o in objects if isinstance(o, RemittanceHeader)]
    assert [h.interchange_control_number for h in headers] == ["000000905", "000000906"]
    assert sum(isinstance(o, ClaimPayment) for o in objects) == 5


def test_4010_with_cr_group() -> None:
    lines = envelope(
        [*HEADER, "CLP*PCN-X*1*100.00*80.00**MC*PX", "CAS*CR*45*20.00"],
        version="004010X091A1",
    )
    lines[0] = lines[0].replace("*00501*", "*00401*").replace("*^*", "*U*")
    data = ("~".join(lines) + "~").replace("BPR*I*1064.50", "BPR*I*80.00").encode()
    reader, objects = read(data)
    assert not [f for f in reader.findings if f.severity in (Severity.ERROR, Severity.FATAL)]
    payment = next(o for o in objects if isinstance(o, ClaimPayment))
    assert payment.adjustments[0].group == "CR"


def test_truncated_file_is_fatal_not_half_read() -> None:
    data = good_835()
    cut = data[: data.index(b"CLP*PCN-C")]
    reader, _ = read(cut)
    assert reader.has_fatal
    assert {f.code for f in reader.findings if f.severity is Severity.FATAL} >= {"missing-se"}


def test_garbage_amount_is_fatal_with_its_position() -> None:
    reader, _ = read(good_835().replace(b"CLP*PCN-B*2*300.00*200.00", b"CLP*PCN-B*2*300.00*2O0.00"))
    fatal = reader.sink.first_fatal()
    assert fatal is not None and fatal.segment_id == "CLP" and "CLP04" in fatal.message


def test_unexpected_segment_is_a_warning() -> None:
    reader, _ = read(good_835().replace(b"LX*1~", b"LX*1~\nHL*1**20*1~"))
    warnings = [f for f in reader.findings if f.code == "unexpected-segment"]
    assert warnings and warnings[0].segment_id == "HL"


def test_an_empty_required_amount_says_it_is_empty() -> None:
    reader, _ = read(good_835().replace(b"CLP*PCN-B*2*300.00*200.00", b"CLP*PCN-B**300.00*"))
    fatal = [f for f in reader.findings if f.code == "bad-amount"]
    assert [f.message for f in fatal] == ["CLP04 is required but empty"]
    (status,) = [f for f in reader.findings if f.code == "missing-status"]
    assert status.severity is Severity.ERROR and status.segment_id == "CLP"


def test_svc01_without_its_component_separator_is_a_warning_and_named_whole() -> None:
    data = good_835().replace(b"SVC*HC:80053*100.00*50.00", b"SVC*HC>80053*100.00*60.00")
    reader, _ = read(data)
    (warning,) = [f for f in reader.findings if f.code == "bad-composite"]
    assert warning.severity is Severity.WARNING and "'HC>80053'" in warning.message
    (line,) = [f for f in reader.findings if f.code == "line-out-of-balance"]
    assert line.message.startswith("service HC>80053: SVC02 100.00 − SVC03 60.00")


def test_claim_out_of_balance_names_claim_and_line_adjustments_apart() -> None:
    reader, _ = read(good_835().replace(b"CLP*PCN-B*2*300.00*200.00", b"CLP*PCN-B*2*310.00*200.00"))
    (claim,) = [f for f in reader.findings if f.code == "claim-out-of-balance"]
    assert claim.message.endswith("add up to 100.00 (claim level 0.00, lines 100.00)")


@pytest.mark.parametrize("amount", ["2_00.00", "２００.00", " 200.00", "200.00 "])
def test_numbers_python_reads_but_x12_does_not_are_bad_amounts(amount: str) -> None:
    data = good_835().replace(b"CLP*PCN-B*2*300.00*200.00", f"CLP*PCN-B*2*300.00*{amount}".encode())
    reader, _ = read(data)
    (bad,) = [f for f in reader.findings if f.code == "bad-amount"]
    assert bad.segment_id == "CLP" and "not an X12 number" in bad.message


def test_a_cas_amount_without_a_reason_is_an_error_not_silently_dropped() -> None:
    data = good_835().replace(b"CAS*OA*23*100.00", b"CAS*OA*23*100.00***12.34")
    reader, _ = read(data)
    (bad,) = [f for f in reader.findings if f.code == "bad-cas"]
    assert bad.severity is Severity.ERROR and "CAS06 '12.34'" in bad.message
