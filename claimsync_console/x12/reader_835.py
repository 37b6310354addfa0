"""The 835 remittance reader: BPR/TRN header, CLP loops with CAS/SVC, and PLB.

It streams: each ``ClaimPayment`` leaves the reader as soon as its loop closes, and the
transaction-level balance (BPR02 = Σ CLP04 − Σ PLB) is kept as running sums, so a 100k-claim
check never sits in memory. Balancing failures are ERROR findings, never exceptions: published
835s do break the identities.

It is also the hot path of every 835 ingest (benchmarks/bench_parse.py), hence the shapes below:
the segments allowed where the reader stands are one set, swapped only when a loop opens or
closes; handlers index a padded element list instead of calling ``Segment.get``; numbers take a
fast path and fall back to the base helpers only to report a bad value; the CAS sums are kept as
the segments arrive; and claim and service payments are built positionally.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import date
from decimal import Decimal, InvalidOperation

from claimsync_console.domain import (
    ZERO,
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
from claimsync_console.x12.base import TransactionContext, TransactionReader
from claimsync_console.x12.findings import FindingSink, Severity
from claimsync_console.x12.tokenizer import Segment

HEADER_SEGMENTS = frozenset(
    {"BPR", "TRN", "CUR", "REF", "DTM", "N1", "N2", "N3", "N4", "PER", "RDM"}
)
CLAIM_SEGMENTS = frozenset({"CAS", "NM1", "MIA", "MOA", "REF", "DTM", "PER", "AMT", "QTY"})
SERVICE_SEGMENTS = frozenset({"DTM", "CAS", "REF", "AMT", "QTY", "LQ"})
NAME_ROLES = {"QC": "patient", "IL": "insured", "74": "corrected_patient", "82": "rendering"}
# Segments allowed anywhere in the body; they open or close loops, so they take the slow path.
BOUNDARY = frozenset({"CLP", "LX", "PLB", "TS3", "TS2"})
IN_SERVICE = SERVICE_SEGMENTS | {"SVC"}
IN_CLAIM = CLAIM_SEGMENTS | {"SVC"}
NOTHING: frozenset[str] = frozenset()
_PAD = [""] * 24
_DATE_CACHE_SIZE = 512
_dates: dict[str, date] = {}  # DTM text -> date: an 835 repeats a few dozen dates all along


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
            raise ImportError(f"{cls.__name__} fields changed; update reader_835's field order")


_check_field_order()


def padded(segment: Segment, size: int) -> list[str]:
    """The elements with '' up to index ``size``: what ``Segment.get`` returns, without a call
    per element."""
    elements = segment.elements
    if len(elements) > size:
        return elements
    return elements + _PAD[: size + 1 - len(elements)]


def person_from_nm1(segment: Segment) -> PersonName:
    e = padded(segment, 9)
    return PersonName(e[1], e[3], e[4], e[5], e[8], e[9])


class _ServiceBuilder:
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
        self.adjusted = ZERO  # Σ CAS amounts, in file order, as ServicePayment sums them
        self.adjustments: list[Adjustment] = []
        self.references: list[Reference] = []
        self.dates: list[DatedValue] = []
        self.amounts: list[Amount] = []
        self.quantities: list[Quantity] = []
        self.remarks: list[str] = []

    def build(self) -> ServicePayment:
        return ServicePayment(
            *self.head,
            tuple(self.adjustments),
            tuple(self.references),
            tuple(self.dates),
            tuple(self.amounts),
            tuple(self.quantities),
            tuple(self.remarks),
            self.index,
        )


class _ClaimBuilder:
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
        self.adjusted = ZERO  # Σ CAS amounts of the claim and its lines, in file order
        self.adjustments: list[Adjustment] = []
        self.services: list[_ServiceBuilder] = []
        self.names: dict[str, PersonName] = {}
        self.references: list[Reference] = []
        self.dates: list[DatedValue] = []
        self.amounts: list[Amount] = []
        self.quantities: list[Quantity] = []
        self.inpatient: tuple[str, ...] = ()
        self.outpatient: tuple[str, ...] = ()


class Remittance835Reader(TransactionReader):
    """Reads one 835 transaction set into a header, claim payments and a trailer."""

    def __init__(self, context: TransactionContext, sink: FindingSink) -> None:
        super().__init__(context, sink)
        self._header_values: dict[str, object] = {"payer": Party(), "payee": Party()}
        self._header_emitted = False
        self._n1_role = ""
        self._claim: _ClaimBuilder | None = None
        self._service: _ServiceBuilder | None = None
        self._plbs: list[ProviderAdjustment] = []
        self._bpr: Segment | None = None
        self._claim_count = 0
        self._paid_total = ZERO
        self._permitted: frozenset[str] = HEADER_SEGMENTS
        self._handlers: dict[str, Callable[[Segment], None]] = {
            "BPR": self._bpr_segment,
            "TRN": self._trn,
            "N1": self._n1,
            "REF": self._ref,
            "DTM": self._dtm,
            "LX": self._lx,
            "TS3": self._ignore,
            "TS2": self._ignore,
            "CLP": self._clp,
            "CAS": self._cas,
            "NM1": self._nm1,
            "MIA": self._mia,
            "MOA": self._moa,
            "AMT": self._amt,
            "QTY": self._qty,
            "SVC": self._svc,
            "LQ": self._lq,
            "PLB": self._plb,
        }

    # -- the TransactionReader contract ------------------------------------------------------

    def feed(self, segment: Segment) -> list[object] | None:
        sid = segment.id
        if sid in BOUNDARY:
            return self._boundary(segment, sid)
        if sid not in self._permitted:
            self.warn(segment, f"segment {sid} is unexpected here in an 835", "unexpected-segment")
            return None
        handler = self._handlers.get(sid)
        if handler is not None:
            handler(segment)
        return None

    def _boundary(self, segment: Segment, sid: str) -> list[object] | None:
        """CLP, LX, PLB, TS3 and TS2: close what they end, handle them, re-read the state."""
        out: list[object] | None = None
        if sid in ("CLP", "LX", "PLB") and self._claim is not None:
            out = [self._close_claim()]
        if not self._header_emitted and sid in ("CLP", "LX", "PLB", "TS3"):
            out = (out or []) + [self._close_header(segment.index)]
        self._handlers[sid](segment)
        self._refresh_permitted()
        return out

    def finish(self, last_index: int) -> list[object]:
        out: list[object] = []
        if not self._header_emitted:
            out.append(self._close_header(last_index))
        if self._claim is not None:
            out.append(self._close_claim())
        trailer = RemittanceTrailer(
            transaction_control_number=self.context.transaction_control_number,
            provider_adjustments=tuple(self._plbs),
            claim_payment_count=self._claim_count,
            paid_total=self._paid_total,
            segment_end=last_index,
        )
        self._check_transaction_balance(trailer)
        out.append(trailer)
        return out

    # -- where each segment may stand ---------------------------------------------------------

    def _refresh_permitted(self) -> None:
        """Which non-boundary segments may stand here; only loop changes move it."""
        if self._service is not None:
            self._permitted = IN_SERVICE
        elif self._claim is not None:
            self._permitted = IN_CLAIM
        elif self._plbs or self._header_emitted:
            self._permitted = NOTHING
        else:
            self._permitted = HEADER_SEGMENTS

    def _ignore(self, segment: Segment) -> None:
        return None

    # -- header --------------------------------------------------------------------------------

    def _bpr_segment(self, segment: Segment) -> None:
        self._bpr = segment
        values = self._header_values
        values["handling_code"] = segment.get(1)
        values["payment_amount"] = self.amount(segment, 2)
        values["credit_debit"] = segment.get(3)
        values["payment_method"] = segment.get(4)
        values["payment_format"] = segment.get(5)
        values["payment_date"] = self.date(segment, 16)

    def _trn(self, segment: Segment) -> None:
        values = self._header_values
        values["trace_type"] = segment.get(1)
        values["trace_number"] = segment.get(2)
        values["originator_id"] = segment.get(3)

    def _n1(self, segment: Segment) -> None:
        role = segment.get(1)
        self._n1_role = role
        party = Party(name=segment.get(2), id_qualifier=segment.get(3), identifier=segment.get(4))
        if role == "PR":
            self._header_values["payer"] = party
        elif role == "PE":
            self._header_values["payee"] = party

    def _close_header(self, index: int) -> RemittanceHeader:
        self._header_emitted = True
        values = self._header_values
        context = self.context
        if self._bpr is None:
            self.sink.add(
                Severity.FATAL, index, "BPR", "the 835 has no BPR payment segment", "missing-bpr"
            )
        payer = values["payer"]
        assert isinstance(payer, Party)
        if not (payer.identifier or payer.name):
            self.sink.add(
                Severity.ERROR, index, "N1", "the 835 names no payer (N1*PR)", "missing-payer"
            )
        return RemittanceHeader(
            interchange_control_number=context.interchange_control_number,
            group_control_number=context.group_control_number,
            transaction_control_number=context.transaction_control_number,
            version=context.version,
            sender_id=context.sender_id,
            receiver_id=context.receiver_id,
            handling_code=str(values.get("handling_code", "")),
            payment_amount=values.get("payment_amount", ZERO),  # type: ignore[arg-type]
            credit_debit=str(values.get("credit_debit", "")),
            payment_method=str(values.get("payment_method", "")),
            payment_format=str(values.get("payment_format", "")),
            payment_date=values.get("payment_date"),  # type: ignore[arg-type]
            trace_type=str(values.get("trace_type", "")),
            trace_number=str(values.get("trace_number", "")),
            originator_id=str(values.get("originator_id", "")),
            payer=payer,
            payee=values["payee"],  # type: ignore[arg-type]
            production_date=values.get("production_date"),  # type: ignore[arg-type]
            segment_start=context.st_segment_index,
        )

    # -- segments shared by levels --------------------------------------------------------------

    def _ref(self, segment: Segment) -> None:
        reference = Reference(segment.get(1), segment.get(2))
        target = self._service or self._claim
        if target is not None:
            target.references.append(reference)
        else:
            self._party_reference(reference)

    def _party_reference(self, reference: Reference) -> None:
        """REF*2U (payer id) and REF*TJ (payee tax id) stand in when N1 carries no id."""
        role = {"PR": "payer", "PE": "payee"}.get(self._n1_role)
        if role is None or reference.qualifier not in ("2U", "TJ", "EO", "NF", "HI", "PQ"):
            return
        party = self._header_values[role]
        assert isinstance(party, Party)
        if not party.identifier:
            self._header_values[role] = Party(party.name, reference.qualifier, reference.value)

    def _dtm(self, segment: Segment) -> None:
        e = padded(segment, 2)
        value = _dates.get(e[2])
        if value is None:
            value = self.date(segment, 2)
            if value is not None:  # only good dates are kept: a bad one is reported every time
                if len(_dates) >= _DATE_CACHE_SIZE:
                    _dates.clear()
                _dates[e[2]] = value
        dated = DatedValue(e[1], value)
        target = self._service or self._claim
        if target is not None:
            target.dates.append(dated)
        elif dated.qualifier == "405":
            self._header_values["production_date"] = dated.value

    def _optional(self, segment: Segment, e: list[str], position: int) -> Decimal | None:
        """``self.decimal`` with a fast path: the base helper runs only to report a bad value."""
        text = e[position]
        if not text:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            return self.decimal(segment, position)
        return value if value.is_finite() else self.decimal(segment, position)

    def _money(self, segment: Segment, e: list[str], position: int) -> Decimal:
        """``self.amount`` with a fast path: the base helper runs only to report a bad value."""
        try:
            value = Decimal(e[position])
        except InvalidOperation:
            return self.amount(segment, position)
        return value if value.is_finite() else self.amount(segment, position)

    def _amt(self, segment: Segment) -> None:
        e = padded(segment, 2)
        value = self._optional(segment, e, 2)
        target = self._service or self._claim
        if target is not None and value is not None:
            target.amounts.append(Amount(e[1], value))

    def _qty(self, segment: Segment) -> None:
        e = padded(segment, 2)
        value = self._optional(segment, e, 2)
        target = self._service or self._claim
        if target is not None and value is not None:
            target.quantities.append(Quantity(e[1], value))

    def _cas(self, segment: Segment) -> None:
        claim = self._claim
        assert claim is not None
        service = self._service
        adjustments = (service or claim).adjustments
        size = len(segment.elements)
        e = padded(segment, 20)
        group = e[1]
        if group not in ("CO", "PR", "OA", "PI", "CR"):
            self.error(
                segment, f"CAS01 group code {group!r} is not CO, PR, OA, PI or CR", "bad-cas-group"
            )
        for position in range(2, min(size, 20), 3):
            reason = e[position]
            if not reason:
                continue
            amount = self._money(segment, e, position + 1)
            quantity = self._optional(segment, e, position + 2)
            adjustments.append(Adjustment(group, reason, amount, quantity))
            claim.adjusted += amount
            if service is not None:
                service.adjusted += amount

    def _lx(self, segment: Segment) -> None:
        self._service = None

    # -- claim loop (2100) ---------------------------------------------------------------------

    def _clp(self, segment: Segment) -> None:
        e = padded(segment, 11)
        head: ClaimHead = (
            e[1],
            e[2],
            self._money(segment, e, 3),
            self._money(segment, e, 4),
            self._optional(segment, e, 5),
            e[6],
            e[7],
            e[8].split(segment.delimiters.component, 1)[0],
            e[9],
            e[11],
        )
        if not e[1]:
            self.error(segment, "CLP01 patient control number is empty", "missing-pcn")
        self._claim = _ClaimBuilder(segment.index, head)

    def _nm1(self, segment: Segment) -> None:
        claim = self._claim
        assert claim is not None
        elements = segment.elements
        role = NAME_ROLES.get(elements[1] if len(elements) > 1 else "")
        if role is not None:
            claim.names[role] = person_from_nm1(segment)

    def _mia(self, segment: Segment) -> None:
        assert self._claim is not None
        elements = segment.elements
        self._claim.inpatient = tuple(
            e for i, e in enumerate(elements) if i in (5, 20, 21, 22, 23) and e
        )

    def _moa(self, segment: Segment) -> None:
        assert self._claim is not None
        self._claim.outpatient = tuple(e for e in segment.elements[3:8] if e)

    def _close_claim(self) -> ClaimPayment:
        claim = self._claim
        assert claim is not None
        self._claim = None
        self._service = None
        builders = claim.services
        names = claim.names
        self._claim_count += 1
        payment = ClaimPayment(
            *claim.head,
            tuple(claim.adjustments),
            tuple([s.build() for s in builders]),
            names.get("patient"),
            names.get("insured"),
            names.get("corrected_patient"),
            None,
            names.get("rendering"),
            tuple(claim.references),
            tuple(claim.dates),
            tuple(claim.amounts),
            tuple(claim.quantities),
            claim.inpatient,
            claim.outpatient,
            claim.index,
            builders[-1].index if builders else claim.index,
            self._claim_count,
        )
        self._paid_total += payment.paid
        self._check_claim_balance(payment, claim)
        return payment

    # -- service loop (2110) -------------------------------------------------------------------

    def _svc(self, segment: Segment) -> None:
        claim = self._claim
        assert claim is not None
        e = padded(segment, 7)
        component = segment.delimiters.component
        procedure = e[1].split(component)
        original = e[6].split(component) if e[6] else [""]
        head: ServiceHead = (
            procedure[0],
            procedure[1] if len(procedure) > 1 else "",
            tuple([m for m in procedure[2:6] if m]),
            self._money(segment, e, 2),
            self._money(segment, e, 3),
            e[4],
            self._optional(segment, e, 5),
            original[1] if len(original) > 1 else "",
            self._optional(segment, e, 7),
        )
        self._service = _ServiceBuilder(segment.index, head)
        claim.services.append(self._service)
        self._permitted = IN_SERVICE

    def _lq(self, segment: Segment) -> None:
        assert self._service is not None
        self._service.remarks.append(segment.get(2))

    # -- provider-level adjustments ------------------------------------------------------------

    def _plb(self, segment: Segment) -> None:
        self._service = None
        provider_id = segment.get(1)
        period = self.date(segment, 2)
        elements = segment.elements
        for position in range(3, min(len(elements), 15), 2):
            composite = elements[position]
            if not composite:
                continue
            parts = composite.split(segment.delimiters.component, 1)
            self._plbs.append(
                ProviderAdjustment(
                    provider_id=provider_id,
                    fiscal_period_date=period,
                    reason_code=parts[0],
                    reference=parts[1] if len(parts) > 1 else "",
                    amount=self.amount(segment, position + 1),
                    segment_index=segment.index,
                )
            )

    # -- balancing -----------------------------------------------------------------------------

    def _check_claim_balance(self, payment: ClaimPayment, claim: _ClaimBuilder) -> None:
        """CLP03 − CLP04 = Σ CAS, and per line SVC02 − SVC03 = Σ its CAS; the sums were kept
        while reading, in file order, so they equal ``adjustment_total`` to the last digit."""
        adjusted = claim.adjusted
        if payment.charge - payment.paid != adjusted:
            self.sink.add(
                Severity.ERROR,
                claim.index,
                "CLP",
                f"claim {payment.patient_control_number}: CLP03 {payment.charge} − CLP04 "
                f"{payment.paid} = {payment.charge - payment.paid}, but the CAS adjustments add "
                f"up to {adjusted}",
                "claim-out-of-balance",
            )
        for service, builder in zip(payment.services, claim.services, strict=True):
            line_adjusted = builder.adjusted
            if service.charge - service.paid != line_adjusted:
                self.sink.add(
                    Severity.ERROR,
                    service.segment_index,
                    "SVC",
                    f"service {service.procedure_code}: SVC02 {service.charge} − SVC03 "
                    f"{service.paid} = {service.charge - service.paid}, but its CAS add up to "
                    f"{line_adjusted}",
                    "line-out-of-balance",
                )

    def _check_transaction_balance(self, trailer: RemittanceTrailer) -> None:
        bpr = self._bpr
        if bpr is None:
            return
        payment = self._header_values.get("payment_amount", ZERO)
        assert isinstance(payment, Decimal)
        expected = trailer.paid_total - trailer.provider_adjustment_total
        if payment != expected:
            self.sink.add(
                Severity.ERROR,
                bpr.index,
                "BPR",
                f"BPR02 {payment} ≠ Σ CLP04 {trailer.paid_total} − Σ PLB "
                f"{trailer.provider_adjustment_total} = {expected}",
                "payment-out-of-balance",
            )
