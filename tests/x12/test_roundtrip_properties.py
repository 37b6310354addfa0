"""Property: whatever balanced 835 content the domain can hold, ``write_835`` then
``read_document`` gives back the same header, claim payments and trailer.

The strategy builds domain objects, not text, and balances them by construction (per line
SVC02 − SVC03 = Σ CAS, per claim CLP03 − CLP04 = Σ CAS, BPR02 = Σ CLP04 − Σ PLB), so any
finding at error level or above, and any field that comes back different, is a writer or reader
bug. Values use a safe alphabet (letters, digits, space, ``-``, ``.``, ``'``) that no delimiter
candidate overlaps.

What the comparison deliberately leaves out, because one side does not carry it:
- positions (``segment_*``, ``sequence``) exist only on the reader's side;
- CAS triplets come back grouped by CAS01 in first-seen order, because that is how the writer
  emits them (one CAS per group, a new one after six triplets);
- ``RemittanceHeader.payer_contact``: the writer puts it in PER*BL02, the reader does not keep
  PER, so it always comes back "";
- the payer id: the writer never writes N1*PR03/04, only ``RemittanceExtras.payer_reference``
  as REF*2U, which the reader takes as Party(name, "2U", reference).

The writer always uses ``* : ^ ~``; it cannot choose delimiters. The second property therefore
re-delimits the written text by substituting characters (exact, since no data character is a
delimiter candidate), which checks the tokenizer and reader, not the writer.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claimsync_console.domain import (
    Adjustment,
    Amount,
    ClaimPayment,
    DatedValue,
    Party,
    PersonName,
    ProviderAdjustment,
    Quantity,
    Reference,
    RemittanceHeader,
    RemittanceTrailer,
    ServicePayment,
)
from claimsync_console.x12.document import read_document
from claimsync_console.x12.findings import Severity
from claimsync_console.x12.writer import Address, Envelope, RemittanceExtras, write_835

ZERO = Decimal("0.00")
STATUSES = ("1", "2", "3", "4", "19", "20", "21", "22", "23")
GROUPS = ("CO", "PR", "OA", "PI")
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# punctuation the data never uses; the writer's own four are among them
DELIMITER_CANDIDATES = "*:^~|!#%@{}`;<>+?=$&/\\\x1c\x1d\x1e\x1f"
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

tokens = st.text(ALNUM, min_size=1, max_size=12)
codes = st.text(ALNUM, min_size=1, max_size=5)
digits = st.text("0123456789", min_size=4, max_size=9)
words = st.builds(
    str.__add__, st.sampled_from(ALNUM[:26]), st.text(ALNUM[:26] + "'.-", max_size=10)
)
names = st.lists(words, min_size=1, max_size=3).map(" ".join)
days = st.dates(date(2015, 1, 1), date(2030, 12, 31))
quantities = st.none() | st.integers(0, 9999).map(lambda n: Decimal(n).scaleb(-1))


def money(low: int, high: int) -> st.SearchStrategy[Decimal]:
    """Integer cents made into a Decimal: no float ever becomes money."""
    return st.integers(low, high).map(lambda cents: Decimal(cents).scaleb(-2))


# Strategies are built once here: building them inside a composite costs more than drawing.
member_ids = st.just("") | tokens
id_qualifiers = st.sampled_from(("MI", "HN", "II", "34", "XX"))
first_names = st.just("") | names
middle_names = st.sampled_from(("", "A", "Q"))
group_pools = st.lists(st.sampled_from(GROUPS), min_size=1, max_size=4, unique=True)
# (index into the drawn group pool, CARC, amount, quantity)
triplet_lists = st.lists(
    st.tuples(st.integers(0, 3), codes, money(-50_000, 500_000), quantities),
    min_size=1,
    max_size=8,
)
references = st.lists(
    st.builds(Reference, st.sampled_from(("6R", "LU", "1L", "EA", "9A", "G1")), tokens),
    max_size=2,
)
dated_values = st.lists(
    st.builds(DatedValue, st.sampled_from(("472", "150", "151", "232", "233")), days),
    max_size=2,
)
amounts = st.lists(
    st.builds(Amount, st.sampled_from(("B6", "KH", "AU", "D8", "T")), money(0, 10**6)),
    max_size=2,
)
counts = st.lists(
    st.builds(Quantity, st.sampled_from(("ZK", "CA", "LA")), st.integers(0, 99).map(Decimal)),
    max_size=1,
)


@st.composite
def people(draw: st.DrawFn, entity: str) -> PersonName:
    member_id = draw(member_ids)
    qualifier = draw(id_qualifiers) if member_id else ""
    return PersonName(
        entity, draw(names), draw(first_names), draw(middle_names), qualifier, member_id
    )


maybe_people = {code: st.none() | people(code) for code in ("QC", "IL", "74", "82")}


@st.composite
def adjustments(draw: st.DrawFn) -> list[Adjustment]:
    """1..8 triplets from a drawn subset of the groups, so one group often gets more than the
    six a CAS holds and the writer has to open another."""
    pool = draw(group_pools)
    drawn = draw(triplet_lists)
    return [Adjustment(pool[g % len(pool)], code, value, qty) for g, code, value, qty in drawn]


def extras_of(
    draw: st.DrawFn,
) -> tuple[list[Reference], list[DatedValue], list[Amount], list[Quantity]]:
    return draw(references), draw(dated_values), draw(amounts), draw(counts)


line_adjustments = adjustments()
claim_adjustments: st.SearchStrategy[list[Adjustment]] = st.just([]) | adjustments()
procedure_qualifiers = st.sampled_from(("HC", "NU", "AD", "ER"))
line_paid = money(0, 500_000)
claim_paid = money(0, 300_000)  # paid at claim level, beyond the lines
original_codes = st.just("") | codes
modifier_lists = st.lists(st.text(ALNUM, min_size=2, max_size=2), max_size=4)
revenue_codes = st.just("") | st.text("0123456789", min_size=4, max_size=4)
remark_lists = st.lists(codes, max_size=3)
remark_codes = st.lists(codes, max_size=5)  # MIA and MOA each carry up to five
statuses = st.sampled_from(STATUSES)
filing_indicators = st.sampled_from(("12", "13", "MA", "MB", "MC", "CI", "HM"))
facility_codes = st.sampled_from(("", "11", "13", "22"))
frequency_codes = st.sampled_from(("", "1", "7", "8"))
drg_codes = st.sampled_from(("", "470", "871"))


@st.composite
def services(draw: st.DrawFn) -> ServicePayment:
    cas = draw(line_adjustments)
    paid = draw(line_paid)
    refs, dated, amts, counted = extras_of(draw)
    original = draw(original_codes)
    return ServicePayment(
        procedure_qualifier=draw(procedure_qualifiers),
        procedure_code=draw(codes),
        modifiers=tuple(draw(modifier_lists)),
        charge=paid + sum((a.amount for a in cas), ZERO),
        paid=paid,
        revenue_code=draw(revenue_codes),
        units_paid=draw(quantities),
        original_procedure_code=original,
        original_units=draw(quantities) if original else None,
        adjustments=tuple(cas),
        references=tuple(refs),
        dates=tuple(dated),
        amounts=tuple(amts),
        quantities=tuple(counted),
        remark_codes=tuple(draw(remark_lists)),
    )


service_lists = st.lists(services(), max_size=4)


def _negated(payment: ClaimPayment) -> ClaimPayment:
    """A reversal (CLP02 22) negates every amount, which keeps every identity balanced."""

    def flip(items: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(replace(item, amount=-item.amount) for item in items)

    lines = tuple(
        replace(s, charge=-s.charge, paid=-s.paid, adjustments=flip(s.adjustments),
                amounts=flip(s.amounts))
        for s in payment.services
    )  # fmt: skip
    responsibility = payment.patient_responsibility
    return replace(
        payment, charge=-payment.charge, paid=-payment.paid, services=lines,
        adjustments=flip(payment.adjustments), amounts=flip(payment.amounts),
        patient_responsibility=None if responsibility is None else -responsibility,
    )  # fmt: skip


@st.composite
def claim_payments(draw: st.DrawFn) -> ClaimPayment:
    lines = draw(service_lists)
    claim_cas = draw(claim_adjustments)
    extra = draw(claim_paid)
    every = claim_cas + [a for s in lines for a in s.adjustments]
    responsibility = sum((a.amount for a in every if a.group == "PR"), ZERO)
    refs, dated, amts, counted = extras_of(draw)
    payment = ClaimPayment(
        patient_control_number=draw(tokens),
        status_code=draw(statuses),
        charge=sum((s.charge for s in lines), ZERO)
        + sum((a.amount for a in claim_cas), ZERO)
        + extra,
        paid=sum((s.paid for s in lines), ZERO) + extra,
        patient_responsibility=responsibility if draw(st.booleans()) else None,
        filing_indicator=draw(filing_indicators),
        payer_claim_control_number=draw(tokens),
        facility_code=draw(facility_codes),
        frequency_code=draw(frequency_codes),
        drg_code=draw(drg_codes),
        adjustments=tuple(claim_cas),
        services=tuple(lines),
        patient=draw(maybe_people["QC"]),
        insured=draw(maybe_people["IL"]),
        corrected_patient=draw(maybe_people["74"]),
        rendering_provider=draw(maybe_people["82"]),
        references=tuple(refs),
        dates=tuple(dated),
        amounts=tuple(amts),
        quantities=tuple(counted),
        inpatient_remarks=tuple(draw(remark_codes)),
        outpatient_remarks=tuple(draw(remark_codes)),
    )
    return _negated(payment) if payment.status_code == "22" else payment


provider_adjustments = st.builds(
    ProviderAdjustment,
    st.sampled_from(("1234567893", "1999999984")),  # few ids, so PLBs share a segment
    st.sampled_from((None, date(2026, 12, 31), date(2025, 12, 31))),
    st.sampled_from(("L6", "WO", "FB", "72", "CS", "J1", "IR", "50", "AP")),
    st.just("") | tokens,
    money(-100_000, 100_000),
)


@st.composite
def remittances(draw: st.DrawFn, max_claims: int = 20) -> dict[str, Any]:
    """Everything ``write_835`` takes, plus what the reader must give back."""
    envelope = Envelope(
        draw(st.text(ALNUM, min_size=1, max_size=15)),
        draw(st.text(ALNUM, min_size=1, max_size=15)),
        draw(st.integers(1, 999_999_999)),
        draw(st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC))),
    )
    payments = draw(st.lists(claim_payments(), min_size=1, max_size=max_claims))
    plbs = draw(st.lists(provider_adjustments, max_size=4))
    st02 = draw(digits)
    method = draw(st.sampled_from(("ACH", "CHK", "NON", "BOP", "FWT")))
    payer_reference = draw(st.just("") | tokens)
    header = RemittanceHeader(
        interchange_control_number=f"{envelope.control_number:09d}",
        group_control_number=str(envelope.control_number),
        transaction_control_number=st02,
        version="005010X221A1",
        sender_id=envelope.sender_id,
        receiver_id=envelope.receiver_id,
        handling_code=draw(st.sampled_from(("I", "H", "C", "D", "P", "U", "X"))),
        payment_amount=sum((p.paid for p in payments), ZERO) - sum((p.amount for p in plbs), ZERO),
        credit_debit=draw(st.sampled_from(("C", "D"))),
        payment_method=method,
        payment_format=draw(st.sampled_from(("CCP", "CTX"))) if method == "ACH" else "",
        payment_date=draw(st.none() | days),
        trace_type="1",
        trace_number=draw(tokens),
        originator_id="1" + draw(st.text("0123456789", min_size=9, max_size=9)),
        payer=Party(draw(names), "2U" if payer_reference else "", payer_reference),
        payee=Party(draw(names), draw(st.sampled_from(("XX", "FI", "XV"))), draw(tokens)),
        payer_contact=draw(st.sampled_from(("", "EDI SUPPORT", "CLAIMS DESK"))),
        production_date=draw(st.none() | days),
    )
    extras = RemittanceExtras(
        Address("PO BOX 1", "ANYTOWN", "NY", "100010001"),
        payer_reference=payer_reference,
        payee_address=draw(st.none() | st.just(Address("1 MAIN ST", "X", "IL", "627010001"))),
        payee_tax_id=draw(st.just("") | st.just("361111111")),
    )
    text = write_835(envelope, header, payments, plbs, extras, st02)
    return {"text": text, "header": header, "payments": payments, "plbs": plbs}


# -- what the reader must give back ------------------------------------------------------------


def grouped(items: tuple[Adjustment, ...]) -> tuple[Adjustment, ...]:
    """CAS triplets in the order the file holds them: by group, groups in first-seen order."""
    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(item.group, len(first_seen))
    return tuple(sorted(items, key=lambda item: first_seen[item.group]))


def expected_payment(payment: ClaimPayment) -> ClaimPayment:
    lines = tuple(replace(s, adjustments=grouped(s.adjustments)) for s in payment.services)
    return replace(payment, adjustments=grouped(payment.adjustments), services=lines)


def unpositioned(payment: ClaimPayment) -> ClaimPayment:
    lines = tuple(replace(s, segment_index=0) for s in payment.services)
    return replace(payment, services=lines, segment_start=0, segment_end=0, sequence=0)


def read_back(text: str) -> tuple[list[object], list[str]]:
    reader = read_document(text.encode("ascii"), "property.835")
    objects = list(reader)
    bad = [
        f"{f.severity}: {f.message}"
        for f in reader.findings
        if f.severity in (Severity.ERROR, Severity.FATAL)
    ]
    return objects, bad


def assert_round_trip(objects: list[object], case: dict[str, Any]) -> None:
    payments: list[ClaimPayment] = case["payments"]
    plbs: list[ProviderAdjustment] = case["plbs"]
    header: RemittanceHeader = case["header"]
    assert [type(o) for o in objects] == [
        RemittanceHeader, *([ClaimPayment] * len(payments)), RemittanceTrailer,
    ]  # fmt: skip
    head, *claims, trailer = objects
    assert isinstance(head, RemittanceHeader) and isinstance(trailer, RemittanceTrailer)
    assert replace(head, segment_start=0) == replace(header, payer_contact="")
    assert [o.sequence for o in claims if isinstance(o, ClaimPayment)] == list(
        range(1, len(payments) + 1)
    )
    for got, sent in zip(claims, payments, strict=True):
        assert isinstance(got, ClaimPayment)
        assert unpositioned(got) == expected_payment(sent), sent.patient_control_number
        assert got.charge - got.paid == got.adjustment_total  # balanced as sent
    read_plbs = tuple(replace(p, segment_index=0) for p in trailer.provider_adjustments)
    assert read_plbs == tuple(plbs)
    assert trailer.transaction_control_number == header.transaction_control_number
    assert trailer.claim_payment_count == len(payments)
    assert trailer.paid_total == sum((p.paid for p in payments), ZERO)
    assert header.payment_amount == trailer.paid_total - trailer.provider_adjustment_total


@SETTINGS
@given(remittances())
def test_written_835_reads_back_field_for_field(case: dict[str, Any]) -> None:
    objects, bad = read_back(case["text"])
    assert bad == []
    assert_round_trip(objects, case)


def redelimit(text: str, element: str, component: str, repetition: str, segment: str) -> str:
    """Swap the writer's four delimiters for others, character by character, so the ISA keeps
    its fixed width. Exact only because no data character is a delimiter candidate."""
    table = str.maketrans({"*": element, ":": component, "^": repetition, "~": segment})
    return text.translate(table)


@SETTINGS
@given(
    remittances(max_claims=5), st.permutations(DELIMITER_CANDIDATES).map(lambda chars: chars[:4])
)
def test_any_distinct_delimiters_read_back_the_same(
    case: dict[str, Any], delimiters: list[str]
) -> None:
    element, component, repetition, segment = delimiters
    text = redelimit(case["text"], element, component, repetition, segment)
    assert set(text) & set(DELIMITER_CANDIDATES) <= {element, component, repetition, segment}
    objects, bad = read_back(text)
    assert bad == []
    assert_round_trip(objects, case)


def test_the_alphabets_never_meet_a_delimiter_candidate() -> None:
    """The re-delimiting property is only sound while this holds."""
    data = set(ALNUM) | set(" '.-") | set("0123456789")
    assert not data & set(DELIMITER_CANDIDATES)
    assert len(set(DELIMITER_CANDIDATES)) == len(DELIMITER_CANDIDATES)
