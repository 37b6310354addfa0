"""The 835 remittance reader: the loop state machine over BPR/TRN header, CLP, SVC and PLB.

It streams: each ``ClaimPayment`` leaves the reader as soon as its loop closes, and the
transaction-level balance (BPR02 = Σ CLP04 − Σ PLB) is kept as running sums, so a 100k-claim
check never sits in memory. Balancing failures are ERROR findings, never exceptions: published
835s do break the identities. What an open loop gathers lives in ``builders_835``.

It is also the hot path of every 835 ingest (benchmarks/bench_parse.py), hence the shapes below:
where the reader stands is one dispatch table (segment id -> handler), swapped only when a loop
opens or closes, and the envelope reader calls that table directly, so a body segment costs one
dict lookup before its handler; handlers pad an element list only when it is short; numbers take
a fast path and fall back to the base helpers only to report a bad value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation

from claimsync_console.domain import (
    ZERO,
    Adjustment,
    Amount,
    ClaimPayment,
    DatedValue,
    Quantity,
    Reference,
    RemittanceTrailer,
)
from claimsync_console.x12.base import (
    MAX_ADJUSTED_EXPONENT,
    Handler,
    TransactionContext,
    TransactionReader,
    plain_number_text,
)
from claimsync_console.x12.builders_835 import (
    CLAIM_FIELDS,
    SERVICE_FIELDS,
    ClaimBuilder,
    ClaimHead,
    ServiceBuilder,
    ServiceHead,
    check_claim_balance,
    padded,
    person_from_nm1,
)
from claimsync_console.x12.fastbuild import fast_constructor
from claimsync_console.x12.findings import FindingSink
from claimsync_console.x12.header_835 import RemittanceHeaderBuilder
from claimsync_console.x12.tokenizer import Segment

HEADER_SEGMENTS = frozenset(
    {"BPR", "TRN", "CUR", "REF", "DTM", "N1", "N2", "N3", "N4", "PER", "RDM"}
)
CLAIM_SEGMENTS = frozenset({"CAS", "NM1", "MIA", "MOA", "REF", "DTM", "PER", "AMT", "QTY"})
SERVICE_SEGMENTS = frozenset({"DTM", "CAS", "REF", "AMT", "QTY", "LQ"})
NAME_ROLES = {"QC": "patient", "IL": "insured", "74": "corrected_patient", "82": "rendering"}
# Segments allowed anywhere in the body; they open or close loops, so each table routes them
# to _boundary.
BOUNDARY = frozenset({"CLP", "LX", "PLB", "TS3", "TS2"})
IN_SERVICE = SERVICE_SEGMENTS | {"SVC"}
IN_CLAIM = CLAIM_SEGMENTS | {"SVC"}
NOTHING: frozenset[str] = frozenset()
CAS_GROUPS = frozenset({"CO", "PR", "OA", "PI", "CR"})
_DATE_CACHE_SIZE = 512
_new_adjustment = fast_constructor(Adjustment)
_new_dated = fast_constructor(DatedValue)
_new_reference = fast_constructor(Reference)
_new_amount = fast_constructor(Amount)
_new_quantity = fast_constructor(Quantity)
_dates: dict[str, date] = {}  # DTM text -> date: an 835 repeats a few dozen dates all along
# Amount text -> Decimal: charges, payments and CAS amounts repeat (two thirds of the amounts
# in the 10k-claim benchmark file hit), and a dict hit is a quarter of Decimal(text) +
# is_finite(). Bounded: once full it stops growing (clearing it when full churned). Only good
# values are kept, so a bad one still reaches the reporting helpers every time.
_DECIMAL_CACHE_SIZE = 8192
_decimals: dict[str, Decimal] = {}


# The names this module exported before the builders moved out; callers still import them here.
_ServiceBuilder = ServiceBuilder
_ClaimBuilder = ClaimBuilder
__all__ = [
    "BOUNDARY",
    "CLAIM_FIELDS",
    "CLAIM_SEGMENTS",
    "HEADER_SEGMENTS",
    "IN_CLAIM",
    "IN_SERVICE",
    "NAME_ROLES",
    "NOTHING",
    "SERVICE_FIELDS",
    "SERVICE_SEGMENTS",
    "ClaimHead",
    "Remittance835Reader",
    "ServiceHead",
    "padded",
    "person_from_nm1",
]


class Remittance835Reader(TransactionReader):
    """Reads one 835 transaction set into a header, claim payments and a trailer."""

    def __init__(self, context: TransactionContext, sink: FindingSink) -> None:
        super().__init__(context, sink)
        self._header = RemittanceHeaderBuilder(self)
        self._claim: ClaimBuilder | None = None
        self._service: ServiceBuilder | None = None
        self._claim_count = 0
        self._paid_total = ZERO
        handlers: dict[str, Callable[[Segment], None]] = {
            "BPR": self._header.bpr_segment,
            "TRN": self._header.trn,
            "N1": self._header.n1,
            "REF": self._ref,
            "DTM": self._dtm,
            "CAS": self._cas,
            "NM1": self._nm1,
            "MIA": self._mia,
            "MOA": self._moa,
            "AMT": self._amt,
            "QTY": self._qty,
            "SVC": self._svc,
            "LQ": self._lq,
        }
        self._loop_handlers: dict[str, Callable[[Segment], None]] = {
            "CLP": self._clp,
            "LX": self._lx,
            "PLB": self._plb,
            "TS3": self._ignore,
            "TS2": self._ignore,
        }

        def table(permitted: frozenset[str]) -> dict[str, Handler]:
            routes: dict[str, Handler] = {s: handlers.get(s, self._ignore) for s in permitted}
            routes.update(dict.fromkeys(BOUNDARY, self._boundary))
            return routes

        self._header_table = table(HEADER_SEGMENTS)
        self._claim_table = table(IN_CLAIM)
        self._service_table = table(IN_SERVICE)
        self._closed_table = table(NOTHING)
        self.dispatch = self._header_table

    # -- the TransactionReader contract ------------------------------------------------------

    def feed(self, segment: Segment) -> list[object] | None:
        handler = self.dispatch.get(segment.id)
        if handler is None:
            self.warn(
                segment, f"segment {segment.id} is unexpected here in an 835", "unexpected-segment"
            )
            return None
        return handler(segment)

    def _boundary(self, segment: Segment) -> list[object] | None:
        """CLP, LX, PLB, TS3 and TS2: close what they end, handle them, re-read the state."""
        sid = segment.id
        out: list[object] | None = None
        if sid in ("CLP", "LX", "PLB") and self._claim is not None:
            out = [self._close_claim()]
        if not self._header.emitted and sid in ("CLP", "LX", "PLB", "TS3"):
            out = (out or []) + [self._header.close(segment.index)]
        self._loop_handlers[sid](segment)
        self._refresh_dispatch()
        return out

    def finish(self, last_index: int) -> list[object]:
        out: list[object] = []
        if not self._header.emitted:
            out.append(self._header.close(last_index))
        if self._claim is not None:
            out.append(self._close_claim())
        trailer = RemittanceTrailer(
            transaction_control_number=self.context.transaction_control_number,
            provider_adjustments=tuple(self._header.plbs),
            claim_payment_count=self._claim_count,
            paid_total=self._paid_total,
            segment_end=last_index,
        )
        self._header.check_balance(trailer)
        out.append(trailer)
        return out

    # -- where each segment may stand ---------------------------------------------------------

    def _refresh_dispatch(self) -> None:
        """Which segments may stand here, and who handles them; only loop changes move it."""
        if self._service is not None:
            self.dispatch = self._service_table
        elif self._claim is not None:
            self.dispatch = self._claim_table
        elif self._header.plbs or self._header.emitted:
            self.dispatch = self._closed_table
        else:
            self.dispatch = self._header_table

    def _ignore(self, segment: Segment) -> None:
        return None

    # -- segments shared by levels --------------------------------------------------------------

    def _ref(self, segment: Segment) -> None:
        e = segment.elements
        if len(e) < 3:
            e = padded(segment, 2)
        reference = _new_reference(e[1], e[2])
        target = self._service or self._claim
        if target is not None:
            target.references.append(reference)
        else:
            self._header.party_reference(reference)

    def _dtm(self, segment: Segment) -> None:
        e = segment.elements
        if len(e) < 3:
            e = padded(segment, 2)
        value = _dates.get(e[2])
        if value is None:
            value = self.date(segment, 2)
            if value is not None:  # only good dates are kept: a bad one is reported every time
                if len(_dates) >= _DATE_CACHE_SIZE:
                    _dates.clear()
                _dates[e[2]] = value
        dated = _new_dated(e[1], value)
        target = self._service or self._claim
        if target is not None:
            target.dates.append(dated)
        elif dated.qualifier == "405":
            self._header.values["production_date"] = dated.value

    def _optional(self, segment: Segment, e: list[str], position: int) -> Decimal | None:
        """``self.decimal`` with a fast path: the base helper runs only to report a bad value."""
        text = e[position]
        if not text:
            return None
        value = _cached_decimal(text)
        return value if value is not None else self.decimal(segment, position)

    def _money(self, segment: Segment, e: list[str], position: int) -> Decimal:
        """``self.amount`` with a fast path: the base helper runs only to report a bad value."""
        value = _cached_decimal(e[position])
        return value if value is not None else self.amount(segment, position)

    def _amt(self, segment: Segment) -> None:
        e = segment.elements
        if len(e) < 3:
            e = padded(segment, 2)
        value = self._optional(segment, e, 2)
        target = self._service or self._claim
        if target is not None and value is not None:
            target.amounts.append(_new_amount(e[1], value))

    def _qty(self, segment: Segment) -> None:
        e = padded(segment, 2)
        value = self._optional(segment, e, 2)
        target = self._service or self._claim
        if target is not None and value is not None:
            target.quantities.append(_new_quantity(e[1], value))

    def _cas(self, segment: Segment) -> None:
        claim = self._claim
        assert claim is not None
        service = self._service
        adjustments = (service or claim).adjustments
        e = segment.elements
        size = len(e)
        if size == 4 and e[2] and e[1] in CAS_GROUPS:
            # One triplet, no quantity: five CAS in six in the benchmark file.
            amount = _decimals.get(e[3])
            if amount is None:
                amount = self._money(segment, e, 3)
            adjustments.append(_new_adjustment(e[1], e[2], amount, None))
            claim.adjusted += amount
            if service is not None:
                service.adjusted += amount
            return
        if size <= 20:  # two more cover the last triplet's amount and quantity
            e = [*e, "", ""] if size > 1 else padded(segment, 3)
        group = e[1]
        if group not in CAS_GROUPS:
            self.error(
                segment, f"CAS01 group code {group!r} is not CO, PR, OA, PI or CR", "bad-cas-group"
            )
        for position in range(2, min(size, 20), 3):
            reason = e[position]
            if not reason:
                if e[position + 1]:  # an amount no reason explains: kept out of the sums, said
                    self.error(
                        segment,
                        f"CAS{position + 1:02d} {e[position + 1]!r} has no reason code in "
                        f"CAS{position:02d}: it is not counted",
                        "bad-cas",
                    )
                continue
            amount = self._money(segment, e, position + 1)
            quantity = self._optional(segment, e, position + 2) if e[position + 2] else None
            adjustments.append(_new_adjustment(group, reason, amount, quantity))
            claim.adjusted += amount
            if service is not None:
                service.adjusted += amount

    def _lx(self, segment: Segment) -> None:
        self._service = None

    def _plb(self, segment: Segment) -> None:
        self._service = None
        self._header.plb(segment)

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
        if not e[2]:
            self.error(segment, "CLP02 claim status code is empty", "missing-status")
        self._claim = ClaimBuilder(segment.index, head)

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
        self._claim_count += 1
        payment = claim.build(self._claim_count)
        self._paid_total += payment.paid
        check_claim_balance(self.sink, payment, claim)
        return payment

    # -- service loop (2110) -------------------------------------------------------------------

    def _svc(self, segment: Segment) -> None:
        claim = self._claim
        assert claim is not None
        e = padded(segment, 7)
        component = segment.delimiters.component
        procedure = e[1].split(component)
        if len(procedure) == 1 and e[1]:
            self.warn(
                segment,
                f"SVC01 {e[1]!r} holds no component separator {component!r}: its qualifier"
                " and procedure code cannot be told apart",
                "bad-composite",
            )
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
        self._service = ServiceBuilder(segment.index, head)
        claim.services.append(self._service)
        self.dispatch = self._service_table

    def _lq(self, segment: Segment) -> None:
        assert self._service is not None
        self._service.remarks.append(segment.get(2))


def _cached_decimal(text: str) -> Decimal | None:
    """A finite Decimal for ``text``, or None when it is not one (the caller reports why).
    Amounts repeat across claims; the first values seen stay cached, so there is no churn."""
    value = _decimals.get(text)
    if value is not None:
        return value
    if not plain_number_text(text):
        return None
    try:  # read_number's rule, inlined: half the amounts miss the cache, and a call each showed
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value.adjusted() > MAX_ADJUSTED_EXPONENT:
        return None
    if len(_decimals) < _DECIMAL_CACHE_SIZE:
        _decimals[text] = value
    return value
