"""Claims as billed (837P/837I) and as acknowledged (277CA)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from claimsync_console.domain.common import DocumentKind, Party, PersonName, Reference


class FrequencyCode(enum.StrEnum):
    """CLM05-3: whether a claim is new, replaces an earlier one, or voids it."""

    ORIGINAL = "1"
    REPLACEMENT = "7"
    VOID = "8"


@dataclass(frozen=True, slots=True)
class ServiceLine:
    """One LX/SV1 (837P) or LX/SV2 (837I) line."""

    line_number: int
    procedure_qualifier: str
    procedure_code: str
    modifiers: tuple[str, ...]
    charge: Decimal
    units: Decimal | None
    unit_basis: str = ""
    revenue_code: str = ""
    service_date: date | None = None
    service_date_end: date | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim as the provider billed it; CLM01 is what the payer echoes in CLP01."""

    kind: DocumentKind
    patient_control_number: str
    billed_amount: Decimal
    payer: Party
    subscriber: PersonName
    patient: PersonName | None
    billing_provider: Party
    billing_provider_npi: str
    rendering_provider_npi: str
    facility_code: str
    facility_code_qualifier: str
    frequency_code: str
    service_date_from: date | None
    service_date_to: date | None
    lines: tuple[ServiceLine, ...] = ()
    payer_claim_control_number: str = ""
    references: tuple[Reference, ...] = ()
    claim_filing_indicator: str = ""
    segment_start: int = 0
    segment_end: int = 0
    transaction_control_number: str = ""

    @property
    def patient_or_subscriber(self) -> PersonName:
        return self.patient if self.patient is not None else self.subscriber


class StatusCategoryClass(enum.StrEnum):
    """How the engine reads STC01-1: into adjudication, or sent back."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PENDING = "pending"
    OTHER = "other"


ACCEPTED_CATEGORIES = frozenset({"A1", "A2", "A5"})
REJECTED_CATEGORIES = frozenset({"A3", "A4", "A6", "A7", "A8"})


def classify_status_category(category: str) -> StatusCategoryClass:
    """A3 is 'returned as unprocessable', so it rejects even though the primer lists it twice."""
    if category in REJECTED_CATEGORIES:
        return StatusCategoryClass.REJECTED
    if category in ACCEPTED_CATEGORIES:
        return StatusCategoryClass.ACCEPTED
    if category.startswith("P"):
        return StatusCategoryClass.PENDING
    return StatusCategoryClass.OTHER


@dataclass(frozen=True, slots=True)
class StatusCode:
    """One STC composite: category, status code, entity. ``message`` is the STC12 free text
    (why a payer rejected the claim, in words), kept on the STC01 code of its segment."""

    category: str
    code: str
    entity: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class ClaimStatus:
    """A 277CA claim-level acknowledgement."""

    patient_control_number: str
    payer_claim_control_number: str
    status: StatusCategoryClass
    codes: tuple[StatusCode, ...]
    status_date: date | None
    charge: Decimal | None
    payer: Party = field(default_factory=Party)
    patient: PersonName | None = None
    segment_start: int = 0
    segment_end: int = 0
    transaction_control_number: str = ""

    @property
    def accepted(self) -> bool:
        return self.status is StatusCategoryClass.ACCEPTED
