"""The re-sent interchange rule: when is a new file the same interchange as one already loaded?

ISA13 alone is no identity: every sender numbers its interchanges its own way, one sender sends
835s and 837s from the same counter (or from two counters that meet), and generated sample sets
restart at 1. So a re-send is the same sender (ISA05/ISA06), the same receiver (ISA07/ISA08),
the same ISA13 *and* the same kind of file (835, 837P, 837I, 277CA), with different bytes (the
same bytes are a ``duplicate``, decided before this rule runs). Only then could loading it post
the same payments (or bill the same claims) twice, and only then does a person have to decide.

Only ISA06 and ISA13 are columns (indexed); the rest is read from the first bytes of each
candidate's kept original, which is cheap because candidates are rare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.store import queries
from claimsync_console.x12.document import transaction_kind
from claimsync_console.x12.findings import Severity
from claimsync_console.x12.tokenizer import TokenizerError, tokenize

HEAD_BYTES = 4096
RESENT_CODE = "resent-interchange"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What identifies an interchange, from its ISA and its first GS/ST: two envelopes that
    are equal (every field) are the same interchange."""

    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    control_number: str
    kind: str


def sniff_envelope(data: bytes) -> Envelope | None:
    """The first interchange's envelope, from the file's first bytes; None when it has no ISA.
    The kind is that of the first transaction set (``unknown`` when none is in the head)."""
    isa = None
    version = ""
    try:
        for segment in tokenize(data[:HEAD_BYTES]):
            if isa is None:
                if segment.id != "ISA":
                    return None
                isa = segment
            elif segment.id == "GS":
                version = segment.get(8).strip()
            elif segment.id == "ST":
                kind = transaction_kind(segment.get(1).strip(), segment.get(3).strip() or version)
                return _envelope(isa, kind.value)
    except (TokenizerError, UnicodeError, IndexError, ValueError):
        pass  # a cut-off head or a broken file: keep what was read
    return None if isa is None else _envelope(isa, "unknown")


def _envelope(isa: Any, kind: str) -> Envelope:
    return Envelope(
        sender_qualifier=isa.get(5).strip(),
        sender_id=isa.get(6).strip(),
        receiver_qualifier=isa.get(7).strip(),
        receiver_id=isa.get(8).strip(),
        control_number=isa.get(13).strip(),
        kind=kind,
    )


def sniff_interchange(data: bytes) -> tuple[str, str]:
    """(sender id ISA06, ISA13) of the file's first interchange, or ('', '') when it has none:
    the two indexed columns of ``source_files``."""
    envelope = sniff_envelope(data)
    if envelope is None:
        return "", ""
    return envelope.sender_id, envelope.control_number


def resent_interchange(session: Session, source_file_id: int, data: bytes) -> dict[str, Any] | None:
    """The ``resent-interchange`` finding when a loaded file (not this one) carried the same
    interchange (see the module docstring), else None."""
    mine = sniff_envelope(data)
    if mine is None or not mine.control_number:
        return None
    for other in queries.loaded_interchanges(
        session, mine.sender_id, mine.control_number, exclude_id=source_file_id
    ):
        head = queries.get_blob_head(session, other.sha256, HEAD_BYTES)
        theirs = sniff_envelope(head or b"")
        if theirs != mine:
            continue
        return {
            "severity": Severity.ERROR.value,
            "segment_index": 1,
            "segment_id": "ISA",
            "code": RESENT_CODE,
            "message": (
                f"interchange ISA13={mine.control_number} ({mine.kind}) from sender "
                f"{mine.sender_qualifier}:{mine.sender_id} to receiver "
                f"{mine.receiver_qualifier}:{mine.receiver_id} was already loaded from file "
                f"{other.name} (source file {other.id}, sha256 {other.sha256[:12]}); a person "
                "must decide whether this file replaces it (claimsync files show / release)"
            ),
        }
    return None


__all__ = ["RESENT_CODE", "Envelope", "resent_interchange", "sniff_envelope", "sniff_interchange"]
