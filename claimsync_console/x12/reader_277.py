"""Reads 277CA claim acknowledgements (005010X214, and 004040X167 before it).

The 277CA is a hierarchy: HL 20 (the payer or clearinghouse), 21 (the receiver), 19 (the
billing provider) and PT (the patient). Only the patient level carries claims: each 2200D loop
starts with TRN*2, whose TRN02 echoes the CLM01 we sent. STCs at the upper levels accept or
reject whole batches and are not claims, so they never become ClaimStatus objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from claimsync_console.domain.claims import (
    ClaimStatus,
    StatusCategoryClass,
    StatusCode,
    classify_status_category,
)
from claimsync_console.domain.common import Party, PersonName
from claimsync_console.x12.base import TransactionContext, TransactionReader
from claimsync_console.x12.findings import FindingSink, Severity
from claimsync_console.x12.tokenizer import Segment

# HL03 codes whose loops hold claims: PT in the 277CA; 22/23 let a 277 (X212) reuse the reader.
CLAIM_LEVELS = frozenset({"PT", "22", "23"})
UPPER_LEVELS = frozenset({"20", "21", "19"})
PATIENT_ENTITIES = frozenset({"QC", "IL"})
KNOWN_SEGMENTS = frozenset({"BHT", "HL", "NM1", "TRN", "STC", "REF", "DTP", "QTY", "AMT", "SVC"})
STC_COMPOSITES = (1, 10, 11)  # STC01, STC10, STC11 each hold category:code:entity


@dataclass(slots=True)
class _StatusDraft:
    start: int
    end: int
    pcn: str
    payer_ccn: str = ""
    first_category: str = ""
    status_date: date | None = None
    charge: Decimal | None = None
    in_service_line: bool = False  # after SVC (2220D), STCs are about one line
    codes: list[StatusCode] = field(default_factory=list)


class Status277Reader(TransactionReader):
    """One 277CA transaction set; yields a ClaimStatus per claim-level TRN*2 loop."""

    def __init__(self, context: TransactionContext, sink: FindingSink) -> None:
        super().__init__(context, sink)
        self._level = ""
        self._payer = Party()
        self._patient: PersonName | None = None
        self._draft: _StatusDraft | None = None
        self._claims = 0  # claim statuses emitted: a 277 with none is worth a warning

    def feed(self, segment: Segment) -> list[object] | None:
        done: list[object] | None = None
        seg_id = segment.id
        if seg_id == "HL":
            done = self._on_hl(segment)
        elif seg_id == "NM1":
            self._on_nm1(segment)
        elif seg_id == "TRN":
            done = self._on_trn(segment)
        elif seg_id == "STC":
            self._on_stc(segment)
        elif seg_id == "REF":
            self._on_ref(segment)
        elif seg_id == "SVC":
            if self._draft is not None:
                self._draft.in_service_line = True
        elif seg_id not in KNOWN_SEGMENTS:
            self.warn(segment, f"{seg_id} is not expected in a 277CA", "unexpected-segment")
        if self._draft is not None:
            self._draft.end = segment.index
        return done

    def finish(self, last_index: int) -> list[object]:
        done = self._close() or []
        if not self._claims:
            self.sink.add(
                Severity.WARNING,
                last_index,
                "SE",
                "this 277 holds no claim-level status (no patient-level HL with TRN*2 and STC):"
                " nothing in it acknowledges or rejects a claim",
                "no-claim-status",
            )
        return done

    def _on_hl(self, segment: Segment) -> list[object] | None:
        done = self._close()
        self._level = segment.get(3)
        if self._level == "20":
            self._payer = Party()
        if self._level in CLAIM_LEVELS:
            self._patient = None
        elif self._level not in UPPER_LEVELS:
            self.warn(
                segment, f"HL03 level {self._level!r} is not a 277CA level", "unexpected-segment"
            )
        return done

    def _on_nm1(self, segment: Segment) -> None:
        entity = segment.get(1)
        if self._level == "20" and entity in ("PR", "AY"):
            self._payer = Party(segment.get(3), segment.get(8), segment.get(9))
        elif self._level in CLAIM_LEVELS and entity in PATIENT_ENTITIES:
            self._patient = PersonName(
                entity_code=entity,
                last_name=segment.get(3),
                first_name=segment.get(4),
                middle_name=segment.get(5),
                id_qualifier=segment.get(8),
                member_id=segment.get(9),
            )

    def _on_trn(self, segment: Segment) -> list[object] | None:
        if self._level not in CLAIM_LEVELS:
            return None  # batch and provider traces, not claims
        if segment.get(1) != "2":
            self.warn(segment, f"claim-level TRN01 is {segment.get(1)!r}, not 2", "bad-value")
        done = self._close()
        self._draft = _StatusDraft(segment.index, segment.index, segment.get(2))
        return done

    def _on_stc(self, segment: Segment) -> None:
        if self._level not in CLAIM_LEVELS:
            return
        draft = self._draft
        if draft is None:
            self.warn(segment, "claim status without a TRN*2 trace", "missing-trace")
            draft = self._draft = _StatusDraft(segment.index, segment.index, "")
        for position in STC_COMPOSITES:
            if segment.get(position):
                message = segment.get(12) if position == 1 else ""
                draft.codes.append(_status_code(segment.components(position), message))
        if draft.first_category or draft.in_service_line or not draft.codes:
            return
        draft.first_category = draft.codes[0].category
        draft.status_date = self.date(segment, 2)
        draft.charge = self.decimal(segment, 4)

    def _on_ref(self, segment: Segment) -> None:
        draft = self._draft
        if draft is not None and not draft.in_service_line and segment.get(1) == "1K":
            draft.payer_ccn = segment.get(2)

    def _close(self) -> list[object] | None:
        draft = self._draft
        if draft is None:
            return None
        self._draft = None
        self._claims += 1
        status = StatusCategoryClass.OTHER
        if draft.first_category:
            status = classify_status_category(draft.first_category)
        else:
            self.sink.add(
                Severity.WARNING,
                draft.start,
                "TRN",
                "claim trace has no claim-level STC",
                "missing-stc",
            )
        return [
            ClaimStatus(
                patient_control_number=draft.pcn,
                payer_claim_control_number=draft.payer_ccn,
                status=status,
                codes=tuple(draft.codes),
                status_date=draft.status_date,
                charge=draft.charge,
                payer=self._payer,
                patient=self._patient,
                segment_start=draft.start,
                segment_end=draft.end,
                transaction_control_number=self.context.transaction_control_number,
            )
        ]


def _status_code(parts: list[str], message: str = "") -> StatusCode:
    padded = [*parts, "", ""]
    return StatusCode(category=padded[0], code=padded[1], entity=padded[2], message=message)
