"""Remittances (835): the payment, each claim payment (CLP) and its adjustments.

The 835 reader streams these objects: a ``RemittanceHeader`` first, each ``ClaimPayment`` as its
loop closes, then a ``RemittanceTrailer``. ``Remittance`` gathers them for callers that want the
whole transaction in memory (tests, small files); ingest never does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from claimsync_console.domain.common import (
    ZERO,
    Amount,
    DatedValue,
    Party,
    PersonName,
    Quantity,
    Reference,
)


class AdjustmentGroup(enum.StrEnum):
    """CAS01. CR exists only in 4010; 5010 dropped it."""

    CO = "CO"
    PR = "PR"
    OA = "OA"
    PI = "PI"
    CR = "CR"


class ClaimStatusCode(enum.StrEnum):
    """CLP02."""

    PRIMARY = "1"
    SECONDARY = "2"
    TERTIARY = "3"
    DENIED = "4"
    PRIMARY_FORWARDED = "19"
    SECONDARY_FORWARDED = "20"
    TERTIARY_FORWARDED = "21"
    REVERSAL = "22"
    NOT_OUR_CLAIM = "23"


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One CAS triplet; a CAS segment holds up to six."""

    group: str
    reason_code: str
    amount: Decimal
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ProviderAdjustment:
    """One PLB reason/amount pair. Positive amounts reduce the payment."""

    provider_id: str
    fiscal_period_date: date | None
    reason_code: str
    reference: str
    amount: Decimal
    segment_index: int = 0


@dataclass(frozen=True, slots=True)
class ServicePayment:
    """An SVC loop (2110)."""

    procedure_qualifier: str
    procedure_code: str
    modifiers: tuple[str, ...]
    charge: Decimal
    paid: Decimal
    revenue_code: str = ""
    units_paid: Decimal | None = None
    original_procedure_code: str = ""
    original_units: Decimal | None = None
    adjustments: tuple[Adjustment, ...] = ()
    references: tuple[Reference, ...] = ()
    dates: tuple[DatedValue, ...] = ()
    amounts: tuple[Amount, ...] = ()
    quantities: tuple[Quantity, ...] = ()
    remark_codes: tuple[str, ...] = ()
    segment_index: int = 0

    @property
    def adjustment_total(self) -> Decimal:
        return sum((a.amount for a in self.adjustments), ZERO)


@dataclass(frozen=True, slots=True)
class ClaimPayment:
    """A CLP loop (2100): what the payer did with one claim."""

    patient_control_number: str
    status_code: str
    charge: Decimal
    paid: Decimal
    patient_responsibility: Decimal | None
    filing_indicator: str
    payer_claim_control_number: str
    facility_code: str = ""
    frequency_code: str = ""
    drg_code: str = ""
    adjustments: tuple[Adjustment, ...] = ()
    services: tuple[ServicePayment, ...] = ()
    patient: PersonName | None = None
    insured: PersonName | None = None
    corrected_patient: PersonName | None = None
    corrected_insured: PersonName | None = None
    rendering_provider: PersonName | None = None
    references: tuple[Reference, ...] = ()
    dates: tuple[DatedValue, ...] = ()
    amounts: tuple[Amount, ...] = ()
    quantities: tuple[Quantity, ...] = ()
    inpatient_remarks: tuple[str, ...] = ()
    outpatient_remarks: tuple[str, ...] = ()
    segment_start: int = 0
    segment_end: int = 0
    sequence: int = 0

    @property
    def is_reversal(self) -> bool:
        return self.status_code == ClaimStatusCode.REVERSAL.value

    @property
    def is_denial(self) -> bool:
        return self.status_code == ClaimStatusCode.DENIED.value

    @property
    def all_adjustments(self) -> tuple[Adjustment, ...]:
        """Claim-level and line-level CAS together: what CLP03 − CLP04 must equal."""
        return self.adjustments + tuple(a for s in self.services for a in s.adjustments)

    @property
    def adjustment_total(self) -> Decimal:
        return sum((a.amount for a in self.all_adjustments), ZERO)


def cash_to_provider(payment_amount: Decimal, credit_debit: str) -> Decimal:
    """BPR02 as cash to the provider: a debit BPR (BPR03 = D) is the provider paying."""
    return -payment_amount if credit_debit.strip().upper() == "D" else payment_amount


@dataclass(frozen=True, slots=True)
class RemittanceHeader:
    """Everything before the first CLP: envelope ids, BPR payment, TRN trace, payer, payee."""

    interchange_control_number: str
    group_control_number: str
    transaction_control_number: str
    version: str
    sender_id: str
    receiver_id: str
    handling_code: str
    payment_amount: Decimal
    credit_debit: str
    payment_method: str
    payment_format: str
    payment_date: date | None
    trace_type: str
    trace_number: str
    originator_id: str
    payer: Party
    payee: Party
    payer_contact: str = ""
    production_date: date | None = None
    segment_start: int = 0


@dataclass(frozen=True, slots=True)
class RemittanceTrailer:
    """PLB adjustments and the transaction's closing position."""

    transaction_control_number: str
    provider_adjustments: tuple[ProviderAdjustment, ...]
    claim_payment_count: int
    paid_total: Decimal
    segment_end: int = 0

    @property
    def provider_adjustment_total(self) -> Decimal:
        return sum((p.amount for p in self.provider_adjustments), ZERO)


@dataclass(frozen=True, slots=True)
class Remittance:
    """A whole 835 transaction, gathered from the reader's stream."""

    header: RemittanceHeader
    claim_payments: tuple[ClaimPayment, ...]
    trailer: RemittanceTrailer

    @property
    def provider_adjustments(self) -> tuple[ProviderAdjustment, ...]:
        return self.trailer.provider_adjustments

    @property
    def paid_total(self) -> Decimal:
        return sum((c.paid for c in self.claim_payments), ZERO)
