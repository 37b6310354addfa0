"""Patients, claims and adjudication rules for the sample-data generator.

Everything here is fake: member ids are random, names and prices come from the tables in
``samplegen_data``. Amounts are built from integer cents and integer percentages so that no
float ever touches money, and every claim payment balances by construction (CLP03 − CLP04 =
Σ CAS, and per line SVC02 − SVC03 = Σ CAS); the tests check that independently on the written
files. Reversals and corrections live in ``samplegen_readjudication``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from claimsync_console.domain import (
    CENT,
    ZERO,
    Adjustment,
    Amount,
    ClaimPayment,
    DatedValue,
    Party,
    PersonName,
    Reference,
    RemittanceHeader,
    ServiceLine,
    ServicePayment,
)
from claimsync_console.engine.samplegen_data import (
    BASE_DATE,
    CLP06_FOR_SBR09,
    DIAGNOSES,
    FIRST,
    INPATIENT_EXTRAS,
    LAST,
    LETTERS,
    OFFICE_VISITS,
    OUTPATIENT,
    PAYERS,
    PROFESSIONAL,
    SPECIAL_LINE,
    STREETS,
    TOWNS,
    Facility,
    PayerProfile,
)
from claimsync_console.x12.writer import Address, ClaimRecord, Envelope

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Patient:
    """One member: the subscriber, and the patient when it is a dependent."""

    payer: int
    subscriber: PersonName
    patient: PersonName | None
    subscriber_gender: str
    patient_gender: str
    address: Address


def between(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint`` without its overhead, which dominated the profile; the float only picks
    an integer, it never becomes money."""
    return low + int(rng.random() * (high - low + 1))


def pick(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]


def cents(value: int) -> Decimal:
    return Decimal(value).scaleb(-2)


def pct(value: Decimal, percent: int) -> Decimal:
    return (value * percent / 100).quantize(CENT, ROUND_HALF_UP)


def _member_id(rng: random.Random, payer: PayerProfile) -> str:
    if payer.key == "MCR":  # shaped like an MBI: digit, letter, letter, digit, ...
        return "".join(
            pick(rng, LETTERS) if shape == "A" else str(between(rng, 0, 9))
            for shape in "9AA9AA9AA99"
        )
    prefix = {"MCD": "MD", "AET": "W", "BCB": "XOF", "UHC": "9"}[payer.key]
    return f"{prefix}{between(rng, 0, 999_999_999):09d}"


def make_patient(rng: random.Random) -> Patient:
    payer_index = rng.choices(range(len(PAYERS)), [p.weight for p in PAYERS])[0]
    payer = PAYERS[payer_index]
    last = pick(rng, LAST)
    gender = pick(rng, "FM")
    born = date(1936, 1, 1) + timedelta(days=between(rng, 0, 9000 if payer.key == "MCR" else 30000))
    subscriber = PersonName("IL", last, pick(rng, FIRST), "", "MI", _member_id(rng, payer), born)
    town, postal = pick(rng, TOWNS)
    address = Address(f"{between(rng, 1, 9999)} {pick(rng, STREETS)} STREET", town, "IL", postal)
    dependent = payer.key != "MCR" and rng.random() < 0.15
    patient = None
    patient_gender = gender
    if dependent:
        patient_gender = pick(rng, "FM")
        child_born = BASE_DATE - timedelta(days=between(rng, 400, 6500))
        patient = PersonName("QC", last, pick(rng, FIRST), "", "", "", child_born)
    return Patient(payer_index, subscriber, patient, gender, patient_gender, address)


def make_lines(
    rng: random.Random, institutional: bool, inpatient: bool, served: date, minimum: int
) -> tuple[ServiceLine, ...]:
    """Service lines with charges varied ±10% around the catalogue price."""
    if inpatient:  # room and board per day, then pharmacy, lab and supplies
        days = between(rng, 2, 6)
        lines = [_line(1, "", cents(240000 * days), served, Decimal(days), "0120", basis="DA")]
        for revenue, _, price in INPATIENT_EXTRAS:
            lines.append(_line(len(lines) + 1, "", _vary(rng, price), served, revenue=revenue))
        return tuple(lines)
    lines = []
    for number in range(1, max(minimum, pick(rng, (1, 1, 2, 2, 3, 4))) + 1):
        if institutional:
            revenue, code, price = pick(rng, OUTPATIENT)
            lines.append(_line(number, code, _vary(rng, price), served, revenue=revenue))
        else:
            code, price, modifiers, _ = pick(rng, PROFESSIONAL)
            modifier, units = pick(rng, modifiers), Decimal(pick(rng, (1, 1, 1, 2)))
            charge = _vary(rng, price) * units
            lines.append(_line(number, code, charge, served, units, modifier=modifier))
    return tuple(lines)


def _line(
    number: int,
    code: str,
    charge: Decimal,
    served: date,
    units: Decimal = Decimal(1),
    revenue: str = "",
    modifier: str = "",
    basis: str = "UN",
) -> ServiceLine:
    modifiers = (modifier,) if modifier else ()
    qualifier = "HC" if code else ""
    return ServiceLine(number, qualifier, code, modifiers, charge, units, basis, revenue, served)


def _vary(rng: random.Random, price_cents: int) -> Decimal:
    return cents(price_cents * between(rng, 90, 110) // 100)


def diagnoses(rng: random.Random) -> tuple[str, ...]:
    """One to three distinct codes (a stride coprime with the list length never repeats)."""
    first, count = between(rng, 0, len(DIAGNOSES) - 1), between(rng, 1, 3)
    return tuple(DIAGNOSES[(first + 5 * i) % len(DIAGNOSES)] for i in range(count))


# -- adjudication ------------------------------------------------------------------------------


@dataclass(slots=True)
class Plan:
    """What happens to one claim, decided before its 837 is written."""

    outcome: str = "paid"  # paid | denied | partial | secondary | co16 | co97
    denial_reason: str = "50"
    rejected: bool = False
    reversal: bool = False
    mismatch_cents: int = 0
    unusual_code: tuple[str, str] | None = None


def line_payment(
    line: ServiceLine,
    charge: Decimal,
    paid: Decimal,
    adjustments: list[Adjustment],
    remarks: tuple[str, ...] = (),
    allowed: Decimal | None = None,
) -> ServicePayment:
    """One SVC loop; NU:<revenue code> when an institutional line has no HCPCS."""
    hcpcs = bool(line.procedure_code)
    return ServicePayment(
        procedure_qualifier=line.procedure_qualifier if hcpcs else "NU",
        procedure_code=line.procedure_code if hcpcs else line.revenue_code,
        modifiers=line.modifiers,
        charge=charge,
        paid=paid,
        revenue_code=line.revenue_code if hcpcs else "",
        units_paid=line.units,
        adjustments=tuple(adjustments),
        references=(Reference("6R", str(line.line_number)),),
        dates=(DatedValue("472", line.service_date),),
        amounts=(Amount("B6", allowed),) if allowed is not None else (),
        remark_codes=remarks,
    )


def price(
    rng: random.Random,
    payer: PayerProfile,
    charge: Decimal,
    office: bool,
    first: bool,
    secondary: bool,
) -> tuple[Decimal, Decimal, list[Adjustment]]:
    """Allowed, paid and CAS for one priced charge: CO-45, PR-1/2/3, CO-253 or OA-23."""
    allowed = pct(charge, between(rng, *payer.allowed_pct))
    if secondary:  # the prior payer paid 80% of allowed; this payer pays the rest
        prior = pct(allowed, 80)
        return allowed, allowed - prior, [Adjustment("OA", "23", charge - allowed + prior)]
    adjustments = [Adjustment("CO", "45", charge - allowed)]
    remaining = allowed
    if first and payer.deductible_cents and rng.random() < 0.2:
        deductible = min(remaining, cents(between(rng, 2000, payer.deductible_cents)))
        adjustments.append(Adjustment("PR", "1", deductible))
        remaining -= deductible
    if office and payer.copay_cents:
        copay = min(remaining, cents(payer.copay_cents))
        adjustments.append(Adjustment("PR", "3", copay))
        remaining -= copay
    elif payer.coinsurance_pct and remaining:
        coinsurance = pct(remaining, payer.coinsurance_pct)
        adjustments.append(Adjustment("PR", "2", coinsurance))
        remaining -= coinsurance
    if payer.sequestration and remaining:
        sequestration = pct(remaining, 2)
        adjustments.append(Adjustment("CO", "253", sequestration))
        remaining -= sequestration
    return allowed, remaining, [a for a in adjustments if a.amount]


def adjudicate(
    rng: random.Random, record: ClaimRecord, plan: Plan, payer: PayerProfile, icn: str
) -> ClaimPayment:
    """The payer's answer to one claim. ``plan.mismatch_cents`` is added to the first line's
    charge: a CLP03 ≠ CLM02 problem that still balances."""
    claim = record.claim
    charges = [line.charge for line in claim.lines]
    charges[0] += cents(plan.mismatch_cents)
    total = sum(charges, ZERO)
    if claim.facility_code == "11" and claim.kind.value == "837I":
        return _inpatient(rng, record, plan, payer, icn, total)
    special = between(rng, 1, len(charges) - 1) if len(charges) > 1 else 0
    services: list[ServicePayment] = []
    remarks: tuple[str, ...] = ()
    for index, (line, charge) in enumerate(zip(claim.lines, charges, strict=True)):
        if plan.outcome == "denied" or (index == special and plan.outcome in SPECIAL_LINE):
            reason, line_remarks = SPECIAL_LINE.get(plan.outcome, (plan.denial_reason, ()))
            if plan.outcome == "co16":
                remarks = ("MA130",)
            denied = [Adjustment("CO", reason or plan.denial_reason, charge)]
            services.append(line_payment(line, charge, ZERO, denied, line_remarks))
            continue
        office = line.procedure_code in OFFICE_VISITS
        secondary = plan.outcome == "secondary"
        allowed, paid, adjustments = price(rng, payer, charge, office, index == 0, secondary)
        if plan.unusual_code is not None and index == special:
            adjustments = unusual(plan.unusual_code, charge, adjustments)
            paid = charge - sum((a.amount for a in adjustments), ZERO)
        services.append(line_payment(line, charge, paid, adjustments, allowed=allowed))
    return _payment(record, plan, icn, total, services, [], remarks)


def unusual(
    code: tuple[str, str], charge: Decimal, adjustments: list[Adjustment]
) -> list[Adjustment]:
    """CO-B7 denies the whole line; OA-121 takes over the contractual (CO-45) amount."""
    group, reason = code
    if reason == "B7":
        return [Adjustment(group, reason, charge)]
    return [
        Adjustment(group, reason, a.amount) if a.reason_code == "45" else a for a in adjustments
    ]


def _inpatient(
    rng: random.Random,
    record: ClaimRecord,
    plan: Plan,
    payer: PayerProfile,
    icn: str,
    charge: Decimal,
) -> ClaimPayment:
    """Inpatient stays are paid per DRG at claim level, without SVC loops."""
    if plan.outcome in ("denied", "co16"):
        reason = "16" if plan.outcome == "co16" else plan.denial_reason
        inpatient = ("MA130",) if plan.outcome == "co16" else ()
        denial = [Adjustment("CO", reason, charge)]
        return _payment(record, plan, icn, charge, [], denial, (), inpatient)
    secondary = plan.outcome == "secondary"
    _, _, adjustments = price(rng, payer, charge, False, True, secondary)
    if plan.unusual_code is not None:
        adjustments = unusual(plan.unusual_code, charge, adjustments)
    return _payment(record, plan, icn, charge, [], adjustments, (), (), drg="470")


def _payment(
    record: ClaimRecord,
    plan: Plan,
    icn: str,
    charge: Decimal,
    services: list[ServicePayment],
    claim_adjustments: list[Adjustment],
    outpatient: tuple[str, ...],
    inpatient: tuple[str, ...] = (),
    drg: str = "",
) -> ClaimPayment:
    """Assemble the CLP loop; CLP04 is derived from the CAS so the claim balances."""
    claim = record.claim
    every = claim_adjustments + [a for s in services for a in s.adjustments]
    paid = charge - sum((a.amount for a in every), ZERO)
    responsibility = sum((a.amount for a in every if a.group == "PR"), ZERO)
    denied = not paid and plan.outcome in ("denied", "co16")
    status = "4" if denied else "2" if plan.outcome == "secondary" else "1"
    dependent = claim.patient is not None
    shown = claim.patient if claim.patient is not None else claim.subscriber
    qualifier, member_id = ("", "") if dependent else ("MI", shown.member_id)
    patient = PersonName("QC", shown.last_name, shown.first_name, "", qualifier, member_id)
    insured = replace(claim.subscriber, date_of_birth=None) if dependent else None
    return ClaimPayment(
        patient_control_number=claim.patient_control_number,
        status_code=status,
        charge=charge,
        paid=paid,
        patient_responsibility=responsibility,
        filing_indicator=CLP06_FOR_SBR09.get(
            claim.claim_filing_indicator, claim.claim_filing_indicator
        ),
        payer_claim_control_number=icn,
        facility_code=claim.facility_code,
        frequency_code="1",
        drg_code=drg,
        adjustments=tuple(claim_adjustments),
        services=tuple(services),
        patient=patient,
        insured=insured,
        inpatient_remarks=inpatient,
        outpatient_remarks=outpatient,
        dates=(
            DatedValue("232", claim.service_date_from),
            DatedValue("233", claim.service_date_to),
        ),
        amounts=() if denied else (Amount("AU", paid + responsibility),),
    )


def remittance_header(
    payer: PayerProfile,
    facility: Facility,
    envelope: Envelope,
    amount: Decimal,
    method: str,
    trace: str,
    paid_on: date,
) -> RemittanceHeader:
    """BPR01 'I' when money moves with the remittance, 'H' (notification only) for a zero check."""
    control = str(envelope.control_number)
    return RemittanceHeader(
        interchange_control_number=control,
        group_control_number=control,
        transaction_control_number="0001",
        version="005010X221A1",
        sender_id=envelope.sender_id,
        receiver_id=envelope.receiver_id,
        handling_code="I" if amount else "H",
        payment_amount=amount,
        credit_debit="C",
        payment_method=method,
        payment_format="CCP" if method == "ACH" else "",
        payment_date=paid_on,
        trace_type="1",
        trace_number=trace,
        originator_id=payer.originator_id,
        payer=Party(payer.name, "", payer.payer_id),
        payee=Party(facility.name, "XX", facility.npi),
        payer_contact="EDI SUPPORT",
        production_date=paid_on - timedelta(days=1),
    )
