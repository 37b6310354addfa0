"""The 835 writer: one interchange holding one remittance (one check or EFT).

An 835 is small enough (one check) to return as one string.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from claimsync_console.domain import (
    Adjustment,
    ClaimPayment,
    DocumentKind,
    ProviderAdjustment,
    RemittanceHeader,
    ServicePayment,
)
from claimsync_console.x12.writer_common import (
    Address,
    Envelope,
    SegmentBuffer,
    add_address,
    amount,
    ccyymmdd,
    close_envelope,
    number,
    open_envelope,
    person,
)

MAX_TRIPLETS = 6  # a CAS holds six (reason, amount, quantity) triplets
MAX_PLB_PAIRS = 6  # a PLB holds six (reason:reference, amount) pairs


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
