"""The 835 reader's loop builders: what an open CLP (2100) or SVC (2110) loop has gathered.

The state machine in ``reader_835`` decides where a segment belongs; the builders here hold the
loop's pieces until it closes and then become one frozen ``ClaimPayment``. They are the
allocation-heavy half of the hot path (benchmarks/bench_parse.py), hence the shapes: slotted
builders, payments built positionally, and the CAS sums kept as the segments arrive so the
balance check needs no second pass.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal

from claimsync_console.domain import (
    ZERO,
    Adjustment,
    Amount,
    ClaimPayment,
    DatedValue,
    PersonName,
    Quantity,
    Reference,
    ServicePayment,
)
from claimsync_console.x12.fastbuild import fast_constructor
from claimsync_console.x12.findings import FindingSink, Severity
from claimsync_console.x12.tokenizer import Segment

_PAD = [""] * 24


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Field order of the positional constructors below; _check_field_order guards it.
CLAIM_FIELDS = _names(
    "patient_control_number status_code charge paid patient_responsibility filing_indicator "
    "payer_claim_control_number facility_code frequency_code drg_code adjustments services "
    "patient insured corrected_patient corrected_insured rendering_provider references dates "
    "amounts quantities inpatient_remarks outpatient_remarks segment_start segment_end "
    "sequence"
)
SERVICE_FIELDS = _names(
    "procedure_qualifier procedure_code modifiers charge paid revenue_code units_paid "
    "original_procedure_code original_units adjustments references dates amounts quantities "
    "remark_codes segment_index"
)
ClaimHead = tuple[str, str, Decimal, Decimal, Decimal | None, str, str, str, str, str]
ServiceHead = tuple[
    str, str, tuple[str, ...], Decimal, Decimal, str, Decimal | None, str, Decimal | None
]


def _check_field_order() -> None:
    """Payments are built positionally (a third faster than by keyword), so the domain's field
    order is part of this reader's contract: fail at import, not with shuffled data."""
    for cls, expected in ((ClaimPayment, CLAIM_FIELDS), (ServicePayment, SERVICE_FIELDS)):
        if tuple(f.name for f in fields(cls)) != expected:
            raise ImportError(f"{cls.__name__} fields changed; update builders_835's field order")


_check_field_order()
_new_claim = fast_constructor(ClaimPayment)
_new_service = fast_constructor(ServicePayment)
_new_person = fast_constructor(PersonName)


def padded(segment: Segment, size: int) -> list[str]:
    """The elements with '' up to index ``size``: what ``Segment.get`` returns, without a call
    per element."""
    elements = segment.elements
    if len(elements) > size:
        return elements
    return elements + _PAD[: size + 1 - len(elements)]


def person_from_nm1(segment: Segment) -> PersonName:
    e = padded(segment, 9)
    person: PersonName = _new_person(e[1], e[3], e[4], e[5], e[8], e[9])
    return person


class ServiceBuilder:
    """An open SVC loop. ``adjusted`` is Σ its CAS amounts, in file order, as
    ``ServicePayment.adjustment_total`` sums them."""

    __slots__ = (
        "adjusted",
        "adjustments",
        "amounts",
        "dates",
        "head",
        "index",
        "quantities",
        "references",
        "remarks",
    )

    def __init__(self, index: int, head: ServiceHead) -> None:
        self.index = index
        self.head = head
        self.adjusted = ZERO
        self.adjustments: list[Adjustment] = []
        self.references: list[Reference] = []
        self.dates: list[DatedValue] = []
        self.amounts: list[Amount] = []
        self.quantities: list[Quantity] = []
        self.remarks: list[str] = []

    def build(self) -> ServicePayment:
        service: ServicePayment = _new_service(
            *self.head,
            tuple(self.adjustments),
            tuple(self.references),
            tuple(self.dates),
            tuple(self.amounts),
            tuple(self.quantities),
            tuple(self.remarks),
            self.index,
        )
        return service


class ClaimBuilder:
    """An open CLP loop. ``adjusted`` is Σ the CAS amounts of the claim and its lines."""

    __slots__ = (
        "adjusted",
        "adjustments",
        "amounts",
        "dates",
        "head",
        "index",
        "inpatient",
        "names",
        "outpatient",
        "quantities",
        "references",
        "services",
    )

    def __init__(self, index: int, head: ClaimHead) -> None:
        self.index = index
        self.head = head
        self.adjusted = ZERO
        self.adjustments: list[Adjustment] = []
        self.services: list[ServiceBuilder] = []
        self.names: dict[str, PersonName] = {}
        self.references: list[Reference] = []
        self.dates: list[DatedValue] = []
        self.amounts: list[Amount] = []
        self.quantities: list[Quantity] = []
        self.inpatient: tuple[str, ...] = ()
        self.outpatient: tuple[str, ...] = ()

    def build(self, sequence: int) -> ClaimPayment:
        builders = self.services
        names = self.names
        payment: ClaimPayment = _new_claim(
            *self.head,
            tuple(self.adjustments),
            tuple([s.build() for s in builders]),
            names.get("patient"),
            names.get("insured"),
            names.get("corrected_patient"),
            None,
            names.get("rendering"),
            tuple(self.references),
            tuple(self.dates),
            tuple(self.amounts),
            tuple(self.quantities),
            self.inpatient,
            self.outpatient,
            self.index,
            builders[-1].index if builders else self.index,
            sequence,
        )
        return payment


def check_claim_balance(sink: FindingSink, payment: ClaimPayment, claim: ClaimBuilder) -> None:
    """CLP03 − CLP04 = Σ CAS, and per line SVC02 − SVC03 = Σ its CAS; the sums were kept
    while reading, in file order, so they equal ``adjustment_total`` to the last digit."""
    adjusted = claim.adjusted
    if payment.charge - payment.paid != adjusted:
        lines = sum((b.adjusted for b in claim.services), ZERO)
        split = f" (claim level {adjusted - lines}, lines {lines})" if lines else ""
        sink.add(
            Severity.ERROR,
            claim.index,
            "CLP",
            f"claim {payment.patient_control_number}: CLP03 {payment.charge} − CLP04 "
            f"{payment.paid} = {payment.charge - payment.paid}, but the CAS adjustments add "
            f"up to {adjusted}{split}",
            "claim-out-of-balance",
        )
    for service, builder in zip(payment.services, claim.services, strict=True):
        line_adjusted = builder.adjusted
        if service.charge - service.paid != line_adjusted:
            sink.add(
                Severity.ERROR,
                service.segment_index,
                "SVC",
                f"service {service.procedure_code or service.procedure_qualifier or '?'}: "
                f"SVC02 {service.charge} − SVC03 "
                f"{service.paid} = {service.charge - service.paid}, but its CAS add up to "
                f"{line_adjusted}",
                "line-out-of-balance",
            )
