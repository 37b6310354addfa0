"""Reads 837P and 837I claims (5010, and 4010 which uses the same segments where it matters).

The 837 is a hierarchy (HL 20 billing provider > 22 subscriber > 23 patient) whose claims
(CLM, loop 2300) inherit the parties above them. A claim carries prior-payer loops (2320/2330,
SBR..NM1, and 2430 SVD/CAS per line) that reuse the same segment ids as the claim's own parties,
so the reader tracks which loop it stands in: a COB NM1*PR or REF*F8 must never overwrite the
claim's payer or payer claim control number.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from claimsync_console.domain.claims import Claim, ServiceLine
from claimsync_console.domain.common import ZERO, DocumentKind, Party, PersonName, Reference
from claimsync_console.x12.base import TransactionContext, TransactionReader, parse_date_range
from claimsync_console.x12.findings import FindingSink, Severity
from claimsync_console.x12.tokenizer import Segment

# Where the reader stands; each value names the loops it covers.
HEADER = "header"  # BHT, 1000A/1000B
BILLING = "billing"  # 2000A/2010AA-AC
SUBSCRIBER = "subscriber"  # 2000B/2010BA-BB
PATIENT = "patient"  # 2000C/2010CA
CLAIM = "claim"  # 2300 and its 2310 provider loops
COB = "cob"  # 2320/2330 prior payers
LINE = "line"  # 2400/2410/2420
LINE_COB = "line_cob"  # 2430 line adjudication by a prior payer

CLAIM_AREAS = frozenset({CLAIM, COB, LINE, LINE_COB})
CLAIM_DATE_QUALIFIERS = frozenset({"472", "434"})
FACILITY_ENTITIES = frozenset({"77", "FA"})

# Every segment id the 5010 and 4010 837P/837I guides allow between ST and SE.
_KNOWN = (
    "BHT REF NM1 N2 N3 N4 PER PRV CUR HL SBR PAT DMG CLM DTP CL1 PWK CN1 AMT K3 NTE CR1 CR2 CR3 "
    "CR4 CR5 CR6 CR7 CR8 CRC HI HCP HSD QTY MEA LX SV1 SV2 SV4 SV5 TOO PS1 LIN CTP SVD CAS OI "
    "MIA MOA LQ FRM DSB UR"
)
KNOWN_SEGMENTS = frozenset(_KNOWN.split())
# Likely stand-ins when a sender ignores ISA16 (seen in published samples: '>' with ISA16 ':').
FOREIGN_COMPONENT_SEPARATORS = (">", ":", "^", "|", "\\", "<")


@dataclass(slots=True)
class _LineDraft:
    number: int
    start: int
    has_service: bool = False
    qualifier: str = ""
    code: str = ""
    modifiers: tuple[str, ...] = ()
    charge: Decimal = ZERO
    units: Decimal | None = None
    unit_basis: str = ""
    revenue_code: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def build(self) -> ServiceLine:
        return ServiceLine(
            line_number=self.number,
            procedure_qualifier=self.qualifier,
            procedure_code=self.code,
            modifiers=self.modifiers,
            charge=self.charge,
            units=self.units,
            unit_basis=self.unit_basis,
            revenue_code=self.revenue_code,
            service_date=self.date_from,
            service_date_end=self.date_to,
        )


@dataclass(slots=True)
class _ClaimDraft:
    start: int
    end: int
    pcn: str
    billed: Decimal
    facility_code: str = ""
    facility_qualifier: str = ""
    frequency: str = ""
    date_from: date | None = None
    date_to: date | None = None
    rendering_npi: str = ""
    line_rendering_npi: str = ""
    payer_ccn: str = ""
    references: list[Reference] = field(default_factory=list)
    lines: list[_LineDraft] = field(default_factory=list)


def split_composite(reader: TransactionReader, segment: Segment, position: int) -> list[str]:
    """Components of a composite; tolerates a sender who used another separator than ISA16."""
    parts = segment.components(position)
    if len(parts) != 1:
        return parts
    text = parts[0]
    for separator in FOREIGN_COMPONENT_SEPARATORS:
        if separator != segment.delimiters.component and separator in text:
            reader.warn(
                segment,
                f"{segment.id}{position:02d} uses {separator!r} as component separator, "
                f"not the ISA16 {segment.delimiters.component!r}",
                "component-separator",
            )
            return text.split(separator)
    return parts


def _party(segment: Segment) -> Party:
    """Organisation or provider person from NM1; provider names are not PHI."""
    name = segment.get(3)
    if segment.get(2) == "1" and segment.get(4):
        name = f"{name}, {segment.get(4)}"
    return Party(name=name, id_qualifier=segment.get(8), identifier=segment.get(9))


def _person(segment: Segment) -> PersonName:
    return PersonName(
        entity_code=segment.get(1),
        last_name=segment.get(3),
        first_name=segment.get(4),
        middle_name=segment.get(5),
        id_qualifier=segment.get(8),
        member_id=segment.get(9),
    )


def _npi(segment: Segment) -> str:
    return segment.get(9) if segment.get(8) == "XX" else ""


class Claim837Reader(TransactionReader):
    """One 837P or 837I transaction set; yields each Claim as soon as its loop closes."""

    def __init__(self, context: TransactionContext, sink: FindingSink, kind: DocumentKind) -> None:
        if kind not in (DocumentKind.CLAIM_837P, DocumentKind.CLAIM_837I):
            raise ValueError(f"Claim837Reader reads 837P or 837I, not {kind.value}")
        super().__init__(context, sink)
        self.kind = kind
        self._area = HEADER
        self._in_provider_loop = False  # 2310x inside a claim: its REF/DTP are not the claim's
        self._person_target = ""  # which person the next DMG describes
        self._billing = Party()
        self._billing_npi = ""
        self._subscriber: PersonName | None = None
        self._patient: PersonName | None = None
        self._payer = Party()
        self._filing = ""
        self._claim: _ClaimDraft | None = None
        self._line: _LineDraft | None = None
        self._handlers = {
            "HL": self._on_hl,
            "NM1": self._on_nm1,
            "DMG": self._on_dmg,
            "SBR": self._on_sbr,
            "CLM": self._on_clm,
            "REF": self._on_ref,
            "DTP": self._on_dtp,
            "LX": self._on_lx,
            "SV1": self._on_sv1,
            "SV2": self._on_sv2,
            "SVD": self._on_svd,
        }

    # -- the TransactionReader contract ------------------------------------------------------

    def feed(self, segment: Segment) -> list[object] | None:
        handler = self._handlers.get(segment.id)
        done: list[object] | None = None
        if handler is not None:
            done = handler(segment)
        elif segment.id not in KNOWN_SEGMENTS:
            self._unexpected(segment)
        if self._claim is not None:
            self._claim.end = segment.index
        return done

    def finish(self, last_index: int) -> list[object]:
        return self._close_claim() or []

    # -- hierarchy and parties ---------------------------------------------------------------

    def _on_hl(self, segment: Segment) -> list[object] | None:
        done = self._close_claim()
        level = segment.get(3)
        self._person_target = ""
        if level == "20":
            self._area = BILLING
            self._billing, self._billing_npi = Party(), ""
            self._reset_subscriber()
        elif level == "22":
            self._area = SUBSCRIBER
            self._reset_subscriber()
        elif level == "23":
            self._area = PATIENT
            self._patient = None
        else:
            self.warn(segment, f"HL03 level {level!r} is not 20, 22 or 23", "unexpected-segment")
        return done

    def _reset_subscriber(self) -> None:
        self._subscriber, self._patient, self._payer, self._filing = None, None, Party(), ""

    def _on_nm1(self, segment: Segment) -> None:
        entity = segment.get(1)
        self._person_target = ""
        area = self._area
        if area == BILLING and entity == "85":
            self._billing, self._billing_npi = _party(segment), _npi(segment)
        elif area == SUBSCRIBER and entity == "IL":
            self._subscriber, self._person_target = _person(segment), SUBSCRIBER
        elif area == SUBSCRIBER and entity == "PR":
            self._payer = _party(segment)
        elif area == PATIENT and entity == "QC":
            self._patient, self._person_target = _person(segment), PATIENT
        elif area == CLAIM and self._claim is not None:
            self._in_provider_loop = True
            if entity == "82":
                self._claim.rendering_npi = _npi(segment)
            # Service facility (77, 4010 FA) has no Claim field yet; it is parsed as a loop
            # start only, so its N3/N4/REF stay out of the claim.
        elif area == LINE and entity == "82" and self._claim is not None:
            self._claim.line_rendering_npi = self._claim.line_rendering_npi or _npi(segment)

    def _on_dmg(self, segment: Segment) -> None:
        if self._person_target not in (SUBSCRIBER, PATIENT):
            return  # a COB (2320) DMG describes another payer's member
        born = self.date(segment, 2) if segment.get(1) in ("D8", "") else None
        if self._person_target == SUBSCRIBER and self._subscriber is not None:
            self._subscriber = replace(self._subscriber, date_of_birth=born)
        elif self._person_target == PATIENT and self._patient is not None:
            self._patient = replace(self._patient, date_of_birth=born)

    def _on_sbr(self, segment: Segment) -> None:
        if self._area == SUBSCRIBER:
            self._filing = segment.get(9)
        elif self._area in (CLAIM, COB):
            self._area = COB  # 2320: another payer, not this claim's
        else:
            self._unexpected(segment)

    # -- the claim ---------------------------------------------------------------------------

    def _on_clm(self, segment: Segment) -> list[object] | None:
        done = self._close_claim()
        if self._area not in (SUBSCRIBER, PATIENT, *CLAIM_AREAS):
            self._unexpected(segment)
        pcn = segment.get(1)
        if not pcn:
            self.error(segment, "CLM01 (patient control number) is empty", "missing-value")
        self._claim = _ClaimDraft(segment.index, segment.index, pcn, self.amount(segment, 2))
        place = [*split_composite(self, segment, 5), "", "", ""]
        self._claim.facility_code, self._claim.facility_qualifier = place[0], place[1]
        self._claim.frequency = place[2]
        self._area, self._in_provider_loop, self._person_target = CLAIM, False, ""
        return done

    def _on_ref(self, segment: Segment) -> None:
        claim = self._claim
        if claim is None or self._area != CLAIM or self._in_provider_loop:
            return
        reference = Reference(segment.get(1), segment.get(2))
        claim.references.append(reference)
        if reference.qualifier == "F8":
            claim.payer_ccn = reference.value

    def _on_dtp(self, segment: Segment) -> None:
        qualifier = segment.get(1)
        if self._area == CLAIM and self._claim is not None and not self._in_provider_loop:
            if qualifier in CLAIM_DATE_QUALIFIERS and self._claim.date_from is None:
                start, end = parse_date_range(self.sink, segment, 3)
                self._claim.date_from, self._claim.date_to = start, end
        elif self._area == LINE and self._line is not None and qualifier == "472":
            self._line.date_from, self._line.date_to = parse_date_range(self.sink, segment, 3)

    # -- service lines -----------------------------------------------------------------------

    def _on_lx(self, segment: Segment) -> None:
        if self._claim is None:
            self._unexpected(segment)
            return
        text = segment.get(1)
        if not text.isdigit():
            self.error(segment, f"LX01 is not a line number: {text!r}")
        self._start_line(segment, int(text) if text.isdigit() else len(self._claim.lines) + 1)

    def _start_line(self, segment: Segment, number: int) -> _LineDraft:
        assert self._claim is not None
        self._line = _LineDraft(number, segment.index)
        self._claim.lines.append(self._line)
        self._area = LINE
        return self._line

    def _line_for_service(self, segment: Segment) -> _LineDraft | None:
        """The open LX for an SV1/SV2; a service with no LX of its own gets an implicit line."""
        if self._claim is None:
            self._unexpected(segment)
            return None
        expected = "SV1" if self.kind is DocumentKind.CLAIM_837P else "SV2"
        if segment.id != expected:
            self.warn(segment, f"{segment.id} in an {self.kind.value} claim", "unexpected-segment")
        line = self._line
        if self._area != LINE or line is None or line.has_service:
            self.warn(segment, f"{segment.id} without its own LX", "unexpected-segment")
            line = self._start_line(segment, len(self._claim.lines) + 1)
        line.has_service = True
        return line

    def _on_sv1(self, segment: Segment) -> None:
        line = self._line_for_service(segment)
        if line is not None:
            self._fill_service(line, segment, procedure=1, charge=2)

    def _on_sv2(self, segment: Segment) -> None:
        line = self._line_for_service(segment)
        if line is not None:
            line.revenue_code = segment.get(1)
            self._fill_service(line, segment, procedure=2, charge=3)

    def _fill_service(
        self, line: _LineDraft, segment: Segment, *, procedure: int, charge: int
    ) -> None:
        """SV1 and SV2 differ only by SV201 (revenue code) shifting everything one place."""
        parts = split_composite(self, segment, procedure) if segment.get(procedure) else [""]
        line.qualifier = parts[0]
        line.code = parts[1] if len(parts) > 1 else ""
        line.modifiers = tuple(part for part in parts[2:6] if part)
        line.charge = self.decimal(segment, charge, required=True) or ZERO
        line.unit_basis = segment.get(charge + 1)
        line.units = self.decimal(segment, charge + 2)

    def _on_svd(self, segment: Segment) -> None:
        if self._area in (LINE, LINE_COB):
            self._area = LINE_COB
        else:
            self._unexpected(segment)

    # -- closing -----------------------------------------------------------------------------

    def _close_claim(self) -> list[object] | None:
        draft = self._claim
        if draft is None:
            return None
        self._claim, self._line = None, None
        lines = tuple(line.build() for line in draft.lines)
        date_from, date_to = draft.date_from, draft.date_to
        if date_from is None:
            date_from, date_to = _line_span(lines)
        self._check_lines(draft, lines)
        claim = Claim(
            kind=self.kind,
            patient_control_number=draft.pcn,
            billed_amount=draft.billed,
            payer=self._payer,
            subscriber=self._subscriber or PersonName("IL"),
            patient=self._patient,
            billing_provider=self._billing,
            billing_provider_npi=self._billing_npi,
            rendering_provider_npi=draft.rendering_npi or draft.line_rendering_npi,
            facility_code=draft.facility_code,
            facility_code_qualifier=draft.facility_qualifier,
            frequency_code=draft.frequency,
            service_date_from=date_from,
            service_date_to=date_to,
            lines=lines,
            payer_claim_control_number=draft.payer_ccn,
            references=tuple(draft.references),
            claim_filing_indicator=self._filing,
            segment_start=draft.start,
            segment_end=draft.end,
            transaction_control_number=self.context.transaction_control_number,
        )
        return [claim]

    def _check_lines(self, draft: _ClaimDraft, lines: tuple[ServiceLine, ...]) -> None:
        """CLM02 must equal the sum of the line charges; published samples break it, so warn."""
        total = sum((line.charge for line in lines), ZERO)
        if not lines:
            message, code = "claim has no service lines", "no-lines"
        elif total != draft.billed:
            message = f"CLM02 {draft.billed} differs from the sum of line charges {total}"
            code = "claim-lines-unbalanced"
        else:
            return
        self.sink.add(Severity.WARNING, draft.start, "CLM", message, code)

    def _unexpected(self, segment: Segment) -> None:
        self.warn(segment, f"{segment.id} is not expected here in an 837", "unexpected-segment")


def _line_span(lines: tuple[ServiceLine, ...]) -> tuple[date | None, date | None]:
    starts = [line.service_date for line in lines if line.service_date is not None]
    ends = [line.service_date_end or line.service_date for line in lines if line.service_date]
    return (min(starts), max(d for d in ends if d is not None)) if starts else (None, None)
