"""X12 5010 writers for 835, 837P/837I and 277CA, used by the sample-data generator and tests.

Every function is pure and deterministic: control numbers and dates come in through
``Envelope``, never from the clock, so the same input always gives byte-identical text. Segments
are written as f-strings that look like the segment itself, end with '~' and a newline (a diff
then points at one segment), and lose their trailing empty elements as X12 requires.
The 837 writer streams one claim at a time because batches hold thousands of claims; an 835
(one check) or a 277CA (one batch) is small enough to return as one string.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TextIO

from claimsync_console.domain import (
    CENT,
    Adjustment,
    Claim,
    ClaimPayment,
    ClaimStatus,
    DocumentKind,
    Party,
    PersonName,
    ProviderAdjustment,
    RemittanceHeader,
    ServicePayment,
)

TERMINATOR = "~\n"
VERSIONS = {
    DocumentKind.REMITTANCE_835: ("HP", "835", "005010X221A1"),
    DocumentKind.CLAIM_837P: ("HC", "837", "005010X222A1"),
    DocumentKind.CLAIM_837I: ("HC", "837", "005010X223A2"),
    DocumentKind.STATUS_277CA: ("HN", "277", "005010X214"),
}
MAX_TRIPLETS = 6  # a CAS holds six (reason, amount, quantity) triplets
MAX_PLB_PAIRS = 6  # a PLB holds six (reason:reference, amount) pairs


@dataclass(frozen=True, slots=True)
class Envelope:
    """ISA/GS identity; ``created`` is passed in so the output never depends on the clock."""

    sender_id: str
    receiver_id: str
    control_number: int
    created: datetime
    usage: str = "P"
    sender_qualifier: str = "ZZ"
    receiver_qualifier: str = "ZZ"


@dataclass(frozen=True, slots=True)
class Address:
    line: str
    city: str
    state: str
    postal_code: str  # 837 billing providers need all nine digits


@dataclass(frozen=True, slots=True)
class RemittanceExtras:
    """835 header facts the domain header does not keep: addresses, contact, bank accounts."""

    payer_address: Address
    payer_reference: str = ""  # REF*2U
    payer_contact_phone: str = "8005550100"
    payee_address: Address | None = None
    payee_tax_id: str = ""  # REF*TJ
    payer_routing: str = "011000015"
    payer_account: str = "000123456"
    payee_routing: str = "021000021"
    payee_account: str = "000987654"


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """A ``Claim`` plus what an 837 must carry and the domain does not keep."""

    claim: Claim
    billing_address: Address
    billing_tax_id: str
    subscriber_address: Address
    diagnoses: tuple[str, ...] = ("R69",)
    subscriber_gender: str = "U"
    patient_gender: str = "U"
    patient_relationship: str = "19"  # PAT01 when the patient is a dependent
    responsibility: str = "P"  # SBR01: P primary, S secondary
    rendering_provider: PersonName | None = None


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """A ``ClaimStatus`` plus the billing provider and service dates a 277CA must carry."""

    status: ClaimStatus
    billing_provider: Party
    service_date_from: date
    service_date_to: date


@dataclass(frozen=True, slots=True)
class Submitter:
    name: str
    identifier: str
    contact_name: str = "EDI DESK"
    phone: str = "8005550199"


# -- formatting --------------------------------------------------------------------------------


def amount(value: Decimal) -> str:
    """Cents, and a bare '0' for zero so a negated zero never prints as '-0.00'."""
    return f"{value.quantize(CENT):f}" if value else "0"


def number(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text


@lru_cache(maxsize=4096)
def ccyymmdd(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def period(start: date, end: date | None) -> str:
    """DTP03 with its format qualifier: D8 for one day, RD8 for a range."""
    if end is None or end == start:
        return f"D8*{ccyymmdd(start)}"
    return f"RD8*{ccyymmdd(start)}-{ccyymmdd(end)}"


def person(code: str, who: PersonName) -> str:
    """An NM1 for a person; the id pair only when there is an id."""
    qualifier = who.id_qualifier if who.member_id else ""
    return (
        f"NM1*{code}*1*{who.last_name}*{who.first_name}*{who.middle_name}"
        f"***{qualifier}*{who.member_id}"
    )


def organisation(code: str, name: str, qualifier: str, identifier: str) -> str:
    return f"NM1*{code}*2*{name}*****{qualifier}*{identifier}"


class SegmentBuffer:
    """Collects segments and counts them from ST, so SE01 is right by construction."""

    __slots__ = ("count", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.count = 0

    def add(self, segment: str) -> None:
        # X12 drops trailing empty elements; no element holds '*', so rstrip is exact
        self.parts.append(segment.rstrip("*") + TERMINATOR)
        self.count += 1

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        return text


def isa(env: Envelope) -> str:
    """The fixed-width ISA: 106 characters up to and including the '~'."""
    at = env.created
    return (
        f"ISA*00*{'':10}*00*{'':10}*{env.sender_qualifier}*{env.sender_id:<15.15}"
        f"*{env.receiver_qualifier}*{env.receiver_id:<15.15}*{at:%y%m%d}*{at:%H%M}"
        f"*^*00501*{env.control_number:09d}*0*{env.usage}*:{TERMINATOR}"
    )


def open_envelope(buf: SegmentBuffer, env: Envelope, kind: DocumentKind, st02: str) -> str:
    """ISA and GS as text; ST goes into ``buf`` so the transaction's count starts there."""
    functional_id, st01, version = VERSIONS[kind]
    at = env.created
    gs = (
        f"GS*{functional_id}*{env.sender_id}*{env.receiver_id}*{at:%Y%m%d}*{at:%H%M}"
        f"*{env.control_number}*X*{version}{TERMINATOR}"
    )
    st03 = "" if kind is DocumentKind.REMITTANCE_835 else version
    buf.add(f"ST*{st01}*{st02}*{st03}")
    return isa(env) + gs


def close_envelope(buf: SegmentBuffer, env: Envelope, st02: str) -> str:
    buf.add(f"SE*{buf.count + 1}*{st02}")
    icn = env.control_number
    return buf.take() + f"GE*1*{icn}{TERMINATOR}IEA*1*{icn:09d}{TERMINATOR}"


def add_address(buf: SegmentBuffer, address: Address) -> None:
    buf.add(f"N3*{address.line}")
    buf.add(f"N4*{address.city}*{address.state}*{address.postal_code}")


def add_cas(buf: SegmentBuffer, adjustments: Sequence[Adjustment]) -> None:
    """One CAS per group in first-seen order, and another after every six triplets."""
    groups: dict[str, list[Adjustment]] = {}
    for adjustment in adjustments:
        groups.setdefault(adjustment.group, []).append(adjustment)
    for group, items in groups.items():
        for start in range(0, len(items), MAX_TRIPLETS):
            triplets = (
                f"{a.reason_code}*{amount(a.amount)}*{number(a.quantity)}"
                for a in items[start : start + MAX_TRIPLETS]
            )
            buf.add(f"CAS*{group}*" + "*".join(triplets))


# -- 835 ---------------------------------------------------------------------------------------


def write_835(
    envelope: Envelope,
    header: RemittanceHeader,
    claim_payments: Iterable[ClaimPayment],
    provider_adjustments: Sequence[ProviderAdjustment] = (),
    extras: RemittanceExtras | None = None,
    transaction_control_number: str = "0001",
) -> str:
    """One interchange holding one 835 transaction (one check or EFT)."""
    extras = extras or RemittanceExtras(Address("PO BOX 1", "ANYTOWN", "NY", "100010001"))
    buf = SegmentBuffer()
    head = open_envelope(buf, envelope, DocumentKind.REMITTANCE_835, transaction_control_number)
    _remittance_header(buf, header, extras)
    for position, payment in enumerate(claim_payments):
        if position == 0:
            buf.add("LX*1")
        _claim_payment(buf, payment)
    _plb(buf, provider_adjustments)
    return head + close_envelope(buf, envelope, transaction_control_number)


def _remittance_header(buf: SegmentBuffer, h: RemittanceHeader, x: RemittanceExtras) -> None:
    paid_on = ccyymmdd(h.payment_date) if h.payment_date else ""
    bank = "*" * 11  # BPR05-15 stay empty unless money moves by ACH
    if h.payment_method == "ACH":
        bank = (
            f"*{h.payment_format or 'CCP'}*01*{x.payer_routing}*DA*{x.payer_account}"
            f"*{h.originator_id}**01*{x.payee_routing}*DA*{x.payee_account}"
        )
    buf.add(
        f"BPR*{h.handling_code or 'I'}*{amount(h.payment_amount)}*{h.credit_debit or 'C'}"
        f"*{h.payment_method}{bank}*{paid_on}"
    )
    buf.add(f"TRN*{h.trace_type or '1'}*{h.trace_number}*{h.originator_id}")
    if h.production_date is not None:
        buf.add(f"DTM*405*{ccyymmdd(h.production_date)}")
    buf.add(f"N1*PR*{h.payer.name}")
    add_address(buf, x.payer_address)
    if x.payer_reference:
        buf.add(f"REF*2U*{x.payer_reference}")
    buf.add(f"PER*BL*{h.payer_contact or 'EDI SUPPORT'}*TE*{x.payer_contact_phone}")
    buf.add(f"N1*PE*{h.payee.name}*{h.payee.id_qualifier or 'XX'}*{h.payee.identifier}")
    if x.payee_address is not None:
        add_address(buf, x.payee_address)
    if x.payee_tax_id:
        buf.add(f"REF*TJ*{x.payee_tax_id}")


def _claim_payment(buf: SegmentBuffer, c: ClaimPayment) -> None:
    responsibility = "" if c.patient_responsibility is None else amount(c.patient_responsibility)
    buf.add(
        f"CLP*{c.patient_control_number}*{c.status_code}*{amount(c.charge)}*{amount(c.paid)}"
        f"*{responsibility}*{c.filing_indicator}*{c.payer_claim_control_number}"
        f"*{c.facility_code}*{c.frequency_code}**{c.drg_code}"
    )
    add_cas(buf, c.adjustments)
    names = (("QC", c.patient), ("IL", c.insured), ("74", c.corrected_patient))
    for code, who in (*names, ("82", c.rendering_provider)):
        if who is not None:
            buf.add(person(code, who))
    if c.inpatient_remarks:  # MIA05, then MIA20-23
        first, rest = c.inpatient_remarks[0], "*".join(c.inpatient_remarks[1:5])
        buf.add(f"MIA*0****{first}{'*' * 15}{rest}")
    if c.outpatient_remarks:  # MOA03-07
        buf.add("MOA***" + "*".join(c.outpatient_remarks[:5]))
    _references(buf, c)
    _dates(buf, c)
    _amounts(buf, c)
    for service in c.services:
        _service_payment(buf, service)


def _service_payment(buf: SegmentBuffer, s: ServicePayment) -> None:
    procedure = ":".join((s.procedure_qualifier, s.procedure_code, *s.modifiers))
    original = s.original_procedure_code and f"{s.procedure_qualifier}:{s.original_procedure_code}"
    buf.add(
        f"SVC*{procedure}*{amount(s.charge)}*{amount(s.paid)}*{s.revenue_code}"
        f"*{number(s.units_paid)}*{original}*{number(s.original_units)}"
    )
    _dates(buf, s)
    add_cas(buf, s.adjustments)
    _references(buf, s)
    _amounts(buf, s)
    for remark in s.remark_codes:
        buf.add(f"LQ*HE*{remark}")


def _references(buf: SegmentBuffer, item: ClaimPayment | ServicePayment) -> None:
    for ref in item.references:
        buf.add(f"REF*{ref.qualifier}*{ref.value}")


def _dates(buf: SegmentBuffer, item: ClaimPayment | ServicePayment) -> None:
    for dated in item.dates:
        if dated.value is not None:
            buf.add(f"DTM*{dated.qualifier}*{ccyymmdd(dated.value)}")


def _amounts(buf: SegmentBuffer, item: ClaimPayment | ServicePayment) -> None:
    for amt in item.amounts:
        buf.add(f"AMT*{amt.qualifier}*{amount(amt.amount)}")
    for qty in item.quantities:
        buf.add(f"QTY*{qty.qualifier}*{number(qty.quantity)}")


def _plb(buf: SegmentBuffer, adjustments: Sequence[ProviderAdjustment]) -> None:
    """Consecutive adjustments of one provider and fiscal date share a PLB, six pairs each."""
    runs: list[list[ProviderAdjustment]] = []
    for adj in adjustments:
        key = (adj.provider_id, adj.fiscal_period_date)
        run = runs[-1] if runs else []
        if (
            run
            and (run[0].provider_id, run[0].fiscal_period_date) == key
            and len(run) < MAX_PLB_PAIRS
        ):
            run.append(adj)
        else:
            runs.append([adj])
    for run in runs:
        first = run[0]
        fiscal = ccyymmdd(first.fiscal_period_date) if first.fiscal_period_date else ""
        pairs = (
            f"{a.reason_code}{':' + a.reference if a.reference else ''}*{amount(a.amount)}"
            for a in run
        )
        buf.add(f"PLB*{first.provider_id}*{fiscal}*" + "*".join(pairs))


# -- 837P / 837I -------------------------------------------------------------------------------


class Claim837Writer:
    """Streams one 837 interchange: ``write`` the claims one by one, then ``close()``.

    Each claim gets its own subscriber HL (and a patient HL when the patient is a dependent); a
    new billing-provider HL opens whenever the billing NPI changes."""

    def __init__(
        self,
        out: TextIO,
        kind: DocumentKind,
        envelope: Envelope,
        submitter: Submitter,
        receiver: Party,
        reference: str,
    ) -> None:
        if kind not in (DocumentKind.CLAIM_837P, DocumentKind.CLAIM_837I):
            raise ValueError(f"not an 837 kind: {kind}")
        self.out, self.kind, self.envelope = out, kind, envelope
        self.institutional = kind is DocumentKind.CLAIM_837I
        self.buf = buf = SegmentBuffer()
        self.hl = self.provider_hl = self.claim_count = 0
        self.provider_npi: str | None = None
        at = envelope.created
        out.write(open_envelope(buf, envelope, kind, "0001"))
        buf.add(f"BHT*0019*00*{reference}*{at:%Y%m%d}*{at:%H%M}*CH")
        buf.add(organisation("41", submitter.name, "46", submitter.identifier))
        buf.add(f"PER*IC*{submitter.contact_name}*TE*{submitter.phone}")
        buf.add(organisation("40", receiver.name, "46", receiver.identifier))

    def write(self, record: ClaimRecord) -> None:
        if record.claim.billing_provider_npi != self.provider_npi:
            self._billing_provider(record)
        self._subscriber(record)
        self._claim(record)
        self.claim_count += 1
        self.out.write(self.buf.take())

    def close(self) -> None:
        self.out.write(close_envelope(self.buf, self.envelope, "0001"))

    def _billing_provider(self, record: ClaimRecord) -> None:
        claim, buf = record.claim, self.buf
        self.provider_npi = claim.billing_provider_npi
        self.hl += 1
        self.provider_hl = self.hl
        buf.add(f"HL*{self.hl}**20*1")
        buf.add(organisation("85", claim.billing_provider.name, "XX", self.provider_npi))
        add_address(buf, record.billing_address)
        buf.add(f"REF*EI*{record.billing_tax_id}")

    def _subscriber(self, record: ClaimRecord) -> None:
        claim, buf = record.claim, self.buf
        patient = claim.patient
        self.hl += 1
        subscriber_hl = self.hl
        buf.add(f"HL*{subscriber_hl}*{self.provider_hl}*22*{'0' if patient is None else '1'}")
        relationship = "18" if patient is None else ""
        buf.add(f"SBR*{record.responsibility}*{relationship}*******{claim.claim_filing_indicator}")
        buf.add(person("IL", claim.subscriber))
        add_address(buf, record.subscriber_address)
        _demographics(buf, claim.subscriber, record.subscriber_gender)
        buf.add(organisation("PR", claim.payer.name, "PI", claim.payer.identifier))
        if patient is not None:
            self.hl += 1
            buf.add(f"HL*{self.hl}*{subscriber_hl}*23*0")
            buf.add(f"PAT*{record.patient_relationship}")
            buf.add(f"NM1*QC*1*{patient.last_name}*{patient.first_name}*{patient.middle_name}")
            add_address(buf, record.subscriber_address)
            _demographics(buf, patient, record.patient_gender)

    def _claim(self, record: ClaimRecord) -> None:
        claim, buf, institutional = record.claim, self.buf, self.institutional
        qualifier = claim.facility_code_qualifier or ("A" if institutional else "B")
        place = f"{claim.facility_code}:{qualifier}:{claim.frequency_code}"
        signature = "" if institutional else "Y"  # CLM06 is not used in the 837I
        billed = amount(claim.billed_amount)
        buf.add(f"CLM*{claim.patient_control_number}*{billed}***{place}*{signature}*A*Y*Y")
        start = claim.service_date_from
        if institutional and start is not None:
            end = claim.service_date_to or start
            buf.add(f"DTP*434*RD8*{ccyymmdd(start)}-{ccyymmdd(end)}")
            buf.add(f"CL1*{'1' if claim.facility_code == '11' else '3'}*1*01")
        if claim.payer_claim_control_number:
            buf.add(f"REF*F8*{claim.payer_claim_control_number}")
        for ref in claim.references:
            buf.add(f"REF*{ref.qualifier}*{ref.value}")
        codes = record.diagnoses
        if institutional:  # principal, then the others in their own HI
            buf.add(f"HI*ABK:{codes[0]}")
            if len(codes) > 1:
                buf.add("HI*" + "*".join(f"ABF:{c}" for c in codes[1:13]))
        else:
            buf.add("HI*" + "*".join([f"ABK:{codes[0]}", *(f"ABF:{c}" for c in codes[1:12])]))
        if claim.rendering_provider_npi:
            doctor = record.rendering_provider or PersonName("82", last_name="PROVIDER")
            role = "71" if institutional else "82"  # attending (837I) or rendering (837P)
            named = replace(doctor, id_qualifier="XX", member_id=claim.rendering_provider_npi)
            buf.add(person(role, named))
        self._lines(claim)

    def _lines(self, claim: Claim) -> None:
        buf = self.buf
        for line in claim.lines:
            buf.add(f"LX*{line.line_number}")
            procedure = ":".join((line.procedure_qualifier, line.procedure_code, *line.modifiers))
            units = number(line.units) or "1"
            basis = line.unit_basis or "UN"
            charge = amount(line.charge)
            if self.institutional:
                procedure = procedure if line.procedure_code else ""
                buf.add(f"SV2*{line.revenue_code}*{procedure}*{charge}*{basis}*{units}")
            else:
                buf.add(f"SV1*{procedure}*{charge}*{basis}*{units}***1")
            served = line.service_date or claim.service_date_from
            if served is not None:
                buf.add(f"DTP*472*{period(served, line.service_date_end)}")


def _demographics(buf: SegmentBuffer, who: PersonName, gender: str) -> None:
    if who.date_of_birth is not None:
        buf.add(f"DMG*D8*{ccyymmdd(who.date_of_birth)}*{gender or 'U'}")


def write_837(
    claims: Iterable[ClaimRecord],
    kind: DocumentKind,
    envelope: Envelope,
    submitter: Submitter,
    receiver: Party,
    reference: str = "1",
) -> str:
    """One interchange with one 837 transaction holding ``claims``, as a string."""
    out = io.StringIO()
    writer = Claim837Writer(out, kind, envelope, submitter, receiver, reference)
    for record in claims:
        writer.write(record)
    writer.close()
    return out.getvalue()


# -- 277CA -------------------------------------------------------------------------------------


def write_277ca(
    statuses: Sequence[StatusRecord], envelope: Envelope, receiver: Submitter, reference: str
) -> str:
    """One 277CA (005010X214) answering one 837 batch: HL 20 payer, 21 submitter, 19 billing
    provider, PT claim. Consecutive statuses of one payer (then one provider) share HLs."""
    buf = SegmentBuffer()
    head = open_envelope(buf, envelope, DocumentKind.STATUS_277CA, "0001")
    at = envelope.created
    today = f"{at:%Y%m%d}"
    buf.add(f"BHT*0085*08*{reference}*{today}*{at:%H%M}*TH")
    hl = 0
    for payer_run in _runs(statuses, lambda r: r.status.payer.identifier):
        payer = payer_run[0].status.payer
        buf.add(f"HL*{hl + 1}**20*1")
        buf.add(organisation("PR", payer.name, "PI", payer.identifier))
        buf.add(f"TRN*1*{reference}{payer.identifier}")
        buf.add(f"DTP*050*D8*{today}")
        buf.add(f"DTP*009*D8*{today}")
        buf.add(f"HL*{hl + 2}*{hl + 1}*21*1")
        buf.add(organisation("41", receiver.name, "46", receiver.identifier))
        buf.add(f"TRN*2*{reference}")
        buf.add(f"STC*A1:19:PR*{today}*WQ*{amount(_charges(payer_run))}")
        receiver_hl, hl = hl + 2, hl + 2
        for provider_run in _runs(payer_run, lambda r: r.billing_provider.identifier):
            hl = _provider_statuses(buf, provider_run, hl, receiver_hl, today)
    return head + close_envelope(buf, envelope, "0001")


def _provider_statuses(
    buf: SegmentBuffer, run: list[StatusRecord], hl: int, parent: int, today: str
) -> int:
    provider = run[0].billing_provider
    provider_hl = hl = hl + 1
    buf.add(f"HL*{hl}*{parent}*19*1")
    buf.add(organisation("85", provider.name, "XX", provider.identifier))
    buf.add(f"TRN*1*{provider.identifier}")
    buf.add(f"STC*A1:19:85**WQ*{amount(_charges(run))}")
    for record in run:
        status = record.status
        hl += 1
        buf.add(f"HL*{hl}*{provider_hl}*PT")
        buf.add(person("QC", status.patient or PersonName("QC")))
        buf.add(f"TRN*2*{status.patient_control_number}")
        codes = [":".join(p for p in (c.category, c.code, c.entity) if p) for c in status.codes]
        action = "WQ" if status.accepted else "U"
        stated = ccyymmdd(status.status_date) if status.status_date else today
        charge = amount(status.charge) if status.charge is not None else "0"
        more = "".join(f"*{code}" for code in codes[1:3])  # STC10 and STC11
        buf.add(f"STC*{codes[0]}*{stated}*{action}*{charge}*****{more}")
        if status.payer_claim_control_number:
            buf.add(f"REF*1K*{status.payer_claim_control_number}")
        buf.add(f"DTP*472*{period(record.service_date_from, record.service_date_to)}")
    return hl


def _charges(records: Sequence[StatusRecord]) -> Decimal:
    return sum((r.status.charge or Decimal(0) for r in records), Decimal("0.00"))


def _runs(
    records: Iterable[StatusRecord], key: Callable[[StatusRecord], str]
) -> list[list[StatusRecord]]:
    """Split into runs of consecutive records that share a key."""
    runs: list[list[StatusRecord]] = []
    last = None
    for record in records:
        value = key(record)
        if not runs or value != last:
            runs.append([])
            last = value
        runs[-1].append(record)
    return runs
