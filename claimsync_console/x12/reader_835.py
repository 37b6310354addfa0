"""The 835 remittance reader: BPR/TRN header, CLP loops with CAS/SVC, and PLB.

It streams: each ``ClaimPayment`` leaves the reader as soon as its loop closes, and the
transaction-level balance (BPR02 = Σ CLP04 − Σ PLB) is kept as running sums, so a 100k-claim
check never sits in memory. Balancing failures are ERROR findings, never exceptions: published
835s do break the identities.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

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


def person_from_nm1(segment: Segment) -> PersonName:
    return PersonName(
        entity_code=segment.get(1),
        last_name=segment.get(3),
        first_name=segment.get(4),
        middle_name=segment.get(5),
        id_qualifier=segment.get(8),
        member_id=segment.get(9),
    )


class _ServiceBuilder:
    __slots__ = (
        "adjustments",
        "amounts",
        "dates",
        "quantities",
        "references",
        "remarks",
        "segment",
        "values",
    )

    def __init__(self, segment: Segment, values: dict[str, object]) -> None:
        self.segment = segment
        self.values = values
        self.adjustments: list[Adjustment] = []
        self.references: list[Reference] = []
        self.dates: list[DatedValue] = []
        self.amounts: list[Amount] = []
        self.quantities: list[Quantity] = []
        self.remarks: list[str] = []

    def build(self) -> ServicePayment:
        return ServicePayment(
            **self.values,  # type: ignore[arg-type]
            adjustments=tuple(self.adjustments),
            references=tuple(self.references),
            dates=tuple(self.dates),
            amounts=tuple(self.amounts),
            quantities=tuple(self.quantities),
            remark_codes=tuple(self.remarks),
            segment_index=self.segment.index,
        )


class _ClaimBuilder:
    __slots__ = (
        "adjustments",
        "amounts",
        "clp",
        "dates",
        "inpatient",
        "names",
        "outpatient",
        "quantities",
        "references",
        "services",
        "values",
    )

    def __init__(self, clp: Segment, values: dict[str, object]) -> None:
        self.clp = clp
        self.values = values
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
        out: list[object] | None = None
        sid = segment.id
        if sid in ("CLP", "LX", "PLB") and self._claim is not None:
            out = [self._close_claim()]
        if not self._header_emitted and sid in ("CLP", "LX", "PLB", "TS3"):
            out = (out or []) + [self._close_header(segment.index)]
        if not self._allowed(sid):
            self.warn(segment, f"segment {sid} is unexpected here in an 835", "unexpected-segment")
            return out
        handler = self._handlers.get(sid)
        if handler is not None:
            handler(segment)
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

    def _allowed(self, sid: str) -> bool:
        if sid in ("CLP", "LX", "PLB", "TS3", "TS2"):
            return True
        if self._service is not None:
            return sid in SERVICE_SEGMENTS or sid == "SVC"
        if self._claim is not None:
            return sid in CLAIM_SEGMENTS or sid == "SVC"
        if self._plbs:
            return False
        return not self._header_emitted and sid in HEADER_SEGMENTS

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
        dated = DatedValue(segment.get(1), self.date(segment, 2))
        target = self._service or self._claim
        if target is not None:
            target.dates.append(dated)
        elif dated.qualifier == "405":
            self._header_values["production_date"] = dated.value

    def _amt(self, segment: Segment) -> None:
        value = self.decimal(segment, 2)
        target = self._service or self._claim
        if target is not None and value is not None:
            target.amounts.append(Amount(segment.get(1), value))

    def _qty(self, segment: Segment) -> None:
        value = self.decimal(segment, 2)
        target = self._service or self._claim
        if target is not None and value is not None:
            target.quantities.append(Quantity(segment.get(1), value))

    def _cas(self, segment: Segment) -> None:
        target = self._service or self._claim
        assert target is not None
        group = segment.get(1)
        if group not in ("CO", "PR", "OA", "PI", "CR"):
            self.error(
                segment, f"CAS01 group code {group!r} is not CO, PR, OA, PI or CR", "bad-cas-group"
            )
        elements = segment.elements
        for position in range(2, min(len(elements), 20), 3):
            reason = elements[position]
            if not reason:
                continue
            amount = self.amount(segment, position + 1)
            quantity = self.decimal(segment, position + 2)
            target.adjustments.append(Adjustment(group, reason, amount, quantity))

    def _lx(self, segment: Segment) -> None:
        self._service = None

    # -- claim loop (2100) ---------------------------------------------------------------------

    def _clp(self, segment: Segment) -> None:
        facility = segment.components(8)
        values: dict[str, object] = {
            "patient_control_number": segment.get(1),
            "status_code": segment.get(2),
            "charge": self.amount(segment, 3),
            "paid": self.amount(segment, 4),
            "patient_responsibility": self.decimal(segment, 5),
            "filing_indicator": segment.get(6),
            "payer_claim_control_number": segment.get(7),
            "facility_code": facility[0],
            "frequency_code": segment.get(9),
            "drg_code": segment.get(11),
        }
        if not values["patient_control_number"]:
            self.error(segment, "CLP01 patient control number is empty", "missing-pcn")
        self._claim = _ClaimBuilder(segment, values)

    def _nm1(self, segment: Segment) -> None:
        claim = self._claim
        assert claim is not None
        role = NAME_ROLES.get(segment.get(1))
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
        services = tuple(s.build() for s in claim.services)
        names = claim.names
        self._claim_count += 1
        payment = ClaimPayment(
            **claim.values,  # type: ignore[arg-type]
            adjustments=tuple(claim.adjustments),
            services=services,
            patient=names.get("patient"),
            insured=names.get("insured"),
            corrected_patient=names.get("corrected_patient"),
            rendering_provider=names.get("rendering"),
            references=tuple(claim.references),
            dates=tuple(claim.dates),
            amounts=tuple(claim.amounts),
            quantities=tuple(claim.quantities),
            inpatient_remarks=claim.inpatient,
            outpatient_remarks=claim.outpatient,
            segment_start=claim.clp.index,
            segment_end=self._last_index(claim),
            sequence=self._claim_count,
        )
        self._paid_total += payment.paid
        self._check_claim_balance(payment, claim.clp)
        return payment

    @staticmethod
    def _last_index(claim: _ClaimBuilder) -> int:
        return claim.clp.index if not claim.services else claim.services[-1].segment.index

    # -- service loop (2110) -------------------------------------------------------------------

    def _svc(self, segment: Segment) -> None:
        claim = self._claim
        assert claim is not None
        procedure = segment.components(1)
        original = segment.components(6) if segment.get(6) else [""]
        values: dict[str, object] = {
            "procedure_qualifier": procedure[0],
            "procedure_code": procedure[1] if len(procedure) > 1 else "",
            "modifiers": tuple(m for m in procedure[2:6] if m),
            "charge": self.amount(segment, 2),
            "paid": self.amount(segment, 3),
            "revenue_code": segment.get(4),
            "units_paid": self.decimal(segment, 5),
            "original_procedure_code": original[1] if len(original) > 1 else "",
            "original_units": self.decimal(segment, 7),
        }
        self._service = _ServiceBuilder(segment, values)
        claim.services.append(self._service)

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

    def _check_claim_balance(self, payment: ClaimPayment, clp: Segment) -> None:
        adjusted = payment.adjustment_total
        if payment.charge - payment.paid != adjusted:
            self.sink.add(
                Severity.ERROR,
                clp.index,
                "CLP",
                f"claim {payment.patient_control_number}: CLP03 {payment.charge} − CLP04 "
                f"{payment.paid} = {payment.charge - payment.paid}, but the CAS adjustments add "
                f"up to {adjusted}",
                "claim-out-of-balance",
            )
        for service in payment.services:
            line_adjusted = service.adjustment_total
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
