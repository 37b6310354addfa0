"""The contract between the envelope reader and the transaction readers.

The envelope reader (``document.py``) owns ISA/GS/ST/SE/GE/IEA and the findings about them. For
each transaction set it creates one ``TransactionReader`` and feeds it every segment between ST
and SE. A reader returns the domain objects it has completed (a claim, a claim payment, ...) as
soon as it can, so the caller can stream them to storage without holding the file in memory.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from claimsync_console.x12.findings import FindingSink, Severity
from claimsync_console.x12.tokenizer import Segment


@dataclass(frozen=True, slots=True)
class TransactionContext:
    """Envelope facts a transaction reader may need."""

    file_name: str
    interchange_control_number: str
    group_control_number: str
    transaction_control_number: str
    version: str
    sender_id: str
    receiver_id: str
    st_segment_index: int


Handler = Callable[[Segment], "list[object] | None"]


class TransactionReader(abc.ABC):
    """Reads the segments of one transaction set (ST to SE, both excluded).

    ``dispatch`` is an optional fast path: when it holds a segment's id, the envelope reader
    calls that handler instead of ``feed`` (same contract), saving a call per body segment. A
    reader swaps it as its state changes; ``feed`` must still accept every segment."""

    def __init__(self, context: TransactionContext, sink: FindingSink) -> None:
        self.context = context
        self.sink = sink
        self.dispatch: dict[str, Handler] = {}

    @abc.abstractmethod
    def feed(self, segment: Segment) -> list[object] | None:
        """Take one segment; return completed domain objects, or None when there are none."""

    @abc.abstractmethod
    def finish(self, last_index: int) -> list[object]:
        """The transaction ended (SE, or the file ended): return what is still open."""

    # -- helpers that turn bad values into findings instead of exceptions --------------------

    def decimal(self, segment: Segment, position: int, *, required: bool = False) -> Decimal | None:
        text = segment.get(position)
        if not text:
            if required:
                self.error(segment, f"{segment.id}{position:02d} is required but empty")
            return None
        value, problem = read_number(text)
        if value is None:
            self.error(segment, f"{segment.id}{position:02d} is {problem}: {text!r}")
        return value

    def amount(self, segment: Segment, position: int) -> Decimal:
        """A required money element; a bad one is a fatal finding and counts as zero."""
        text = segment.get(position)
        value, problem = read_number(text)
        if value is None:
            name = f"{segment.id}{position:02d}"
            said = (
                f"{name} must be an amount, got {text!r} ({problem})"
                if text
                else f"{name} is required but empty"
            )
            self.sink.add(Severity.FATAL, segment.index, segment.id, said, "bad-amount")
            return Decimal("0.00")
        return value

    def date(self, segment: Segment, position: int) -> date | None:
        return parse_date(self.sink, segment, position)

    def error(self, segment: Segment, message: str, code: str = "bad-value") -> None:
        self.sink.add(Severity.ERROR, segment.index, segment.id, message, code)

    def warn(self, segment: Segment, message: str, code: str = "") -> None:
        self.sink.add(Severity.WARNING, segment.index, segment.id, message, code)


#: Numbers at or above 10**15 are refused: no payment comes near it (HIPAA caps an amount at
#: 10 characters), every amount's cents then fit a 64-bit column, and an exponent like 1E400
#: cannot reach the storage's cents arithmetic or overflow a balancing sum.
MAX_ADJUSTED_EXPONENT = 14


def plain_number_text(text: str) -> bool:
    return text.isascii() and "_" not in text and text == text.strip()


def read_number(text: str) -> tuple[Decimal | None, str]:
    """The value of an X12 numeric element, or None and what is wrong with it. ``Decimal``
    also takes '1_000', ' 5' and digits of other scripts; X12 numbers are ASCII, unpadded."""
    if not plain_number_text(text):
        return None, "not an X12 number"
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None, "not a number"
    if not value.is_finite():
        return None, "not a finite number"
    if value.adjusted() > MAX_ADJUSTED_EXPONENT:
        return None, "too large for an amount"
    return value, ""


def parse_date(sink: FindingSink, segment: Segment, position: int) -> date | None:
    """CCYYMMDD, or YYMMDD as 4010 and ISA09 use; a bad date is an error finding, not a crash."""
    text = segment.get(position)
    if not text:
        return None
    try:
        if len(text) == 8:
            return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        if len(text) == 6:
            year = int(text[:2])
            return date(2000 + year if year < 70 else 1900 + year, int(text[2:4]), int(text[4:6]))
    except ValueError:
        pass
    sink.add(
        Severity.ERROR,
        segment.index,
        segment.id,
        f"{segment.id}{position:02d} is not a date: {text!r}",
        "bad-date",
    )
    return None


def parse_date_range(
    sink: FindingSink, segment: Segment, position: int
) -> tuple[date | None, date | None]:
    """DTP with format RD8 holds 'CCYYMMDD-CCYYMMDD'."""
    text = segment.get(position)
    if "-" not in text:
        single = parse_date(sink, segment, position)
        return single, single
    start_text, _, end_text = text.partition("-")
    start = _date_or_none(start_text)
    end = _date_or_none(end_text)
    if start is None or end is None:
        sink.add(Severity.ERROR, segment.index, segment.id, f"bad date range {text!r}", "bad-date")
    return start, end


def _date_or_none(text: str) -> date | None:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) == 8 else None
    except ValueError:
        return None
