"""What every X12 writer shares: the envelope, segment formatting and counting.

Segments are written as f-strings that look like the segment itself, end with '~' and a newline
(a diff then points at one segment), and lose their trailing empty elements as X12 requires.
Control numbers and dates come in through ``Envelope``, never from the clock, so the same input
always gives byte-identical text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from claimsync_console.domain import CENT, DocumentKind, PersonName

TERMINATOR = "~\n"
VERSIONS = {
    DocumentKind.REMITTANCE_835: ("HP", "835", "005010X221A1"),
    DocumentKind.CLAIM_837P: ("HC", "837", "005010X222A1"),
    DocumentKind.CLAIM_837I: ("HC", "837", "005010X223A2"),
    DocumentKind.STATUS_277CA: ("HN", "277", "005010X214"),
}


@dataclass(frozen=True, slots=True)
class Envelope:
    """ISA/GS identity; ``created`` is passed in so the output never depends on the clock."""

    sender_id: str
    receiver_id: str
    control_number: int
    created: datetime
    usage: str = "P"
    sender_qualifier: str = "ZZ"
    receiver_qualifier: str = "ZZ"


@dataclass(frozen=True, slots=True)
class Address:
    line: str
    city: str
    state: str
    postal_code: str  # 837 billing providers need all nine digits


@dataclass(frozen=True, slots=True)
class Submitter:
    name: str
    identifier: str
    contact_name: str = "EDI DESK"
    phone: str = "8005550199"


def amount(value: Decimal) -> str:
    """Cents, and a bare '0' for zero so a negated zero never prints as '-0.00'."""
    return f"{value.quantize(CENT):f}" if value else "0"


def number(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text


@lru_cache(maxsize=4096)
def ccyymmdd(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def period(start: date, end: date | None) -> str:
    """DTP03 with its format qualifier: D8 for one day, RD8 for a range."""
    if end is None or end == start:
        return f"D8*{ccyymmdd(start)}"
    return f"RD8*{ccyymmdd(start)}-{ccyymmdd(end)}"


def person(code: str, who: PersonName) -> str:
    """An NM1 for a person; the id pair only when there is an id."""
    qualifier = who.id_qualifier if who.member_id else ""
    return (
        f"NM1*{code}*1*{who.last_name}*{who.first_name}*{who.middle_name}"
        f"***{qualifier}*{who.member_id}"
    )


def organisation(code: str, name: str, qualifier: str, identifier: str) -> str:
    return f"NM1*{code}*2*{name}*****{qualifier}*{identifier}"


class SegmentBuffer:
    """Collects segments and counts them from ST, so SE01 is right by construction."""

    __slots__ = ("count", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.count = 0

    def add(self, segment: str) -> None:
        # X12 drops trailing empty elements; no element holds '*', so rstrip is exact
        self.parts.append(segment.rstrip("*") + TERMINATOR)
        self.count += 1

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        return text


def isa(env: Envelope) -> str:
    """The fixed-width ISA: 106 characters up to and including the '~'."""
    at = env.created
    return (
        f"ISA*00*{'':10}*00*{'':10}*{env.sender_qualifier}*{env.sender_id:<15.15}"
        f"*{env.receiver_qualifier}*{env.receiver_id:<15.15}*{at:%y%m%d}*{at:%H%M}"
        f"*^*00501*{env.control_number:09d}*0*{env.usage}*:{TERMINATOR}"
    )


def open_envelope(buf: SegmentBuffer, env: Envelope, kind: DocumentKind, st02: str) -> str:
    """ISA and GS as text; ST goes into ``buf`` so the transaction's count starts there."""
    functional_id, st01, version = VERSIONS[kind]
    at = env.created
    gs = (
        f"GS*{functional_id}*{env.sender_id}*{env.receiver_id}*{at:%Y%m%d}*{at:%H%M}"
        f"*{env.control_number}*X*{version}{TERMINATOR}"
    )
    st03 = "" if kind is DocumentKind.REMITTANCE_835 else version
    buf.add(f"ST*{st01}*{st02}*{st03}")
    return isa(env) + gs


def close_envelope(buf: SegmentBuffer, env: Envelope, st02: str) -> str:
    buf.add(f"SE*{buf.count + 1}*{st02}")
    icn = env.control_number
    return buf.take() + f"GE*1*{icn}{TERMINATOR}IEA*1*{icn:09d}{TERMINATOR}"


def add_address(buf: SegmentBuffer, address: Address) -> None:
    buf.add(f"N3*{address.line}")
    buf.add(f"N4*{address.city}*{address.state}*{address.postal_code}")
