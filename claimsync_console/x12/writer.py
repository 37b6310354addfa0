"""X12 5010 writers for 835, 837P/837I and 277CA, used by the sample-data generator and tests.

Every function is pure and deterministic: control numbers and dates come in through
``Envelope``, never from the clock, so the same input always gives byte-identical text. The
writers live in one module per transaction set (``writer_835``, ``writer_837``, ``writer_277``)
over ``writer_common``; this module re-exports them so callers need one import.
"""

from __future__ import annotations

from claimsync_console.x12.writer_277 import StatusRecord, write_277ca
from claimsync_console.x12.writer_835 import (
    MAX_PLB_PAIRS,
    MAX_TRIPLETS,
    RemittanceExtras,
    add_cas,
    write_835,
)
from claimsync_console.x12.writer_837 import Claim837Writer, ClaimRecord, write_837
from claimsync_console.x12.writer_common import (
    TERMINATOR,
    VERSIONS,
    Address,
    Envelope,
    SegmentBuffer,
    Submitter,
    add_address,
    amount,
    ccyymmdd,
    close_envelope,
    isa,
    number,
    open_envelope,
    organisation,
    period,
    person,
)

__all__ = [
    "MAX_PLB_PAIRS",
    "MAX_TRIPLETS",
    "TERMINATOR",
    "VERSIONS",
    "Address",
    "Claim837Writer",
    "ClaimRecord",
    "Envelope",
    "RemittanceExtras",
    "SegmentBuffer",
    "StatusRecord",
    "Submitter",
    "add_address",
    "add_cas",
    "amount",
    "ccyymmdd",
    "close_envelope",
    "isa",
    "number",
    "open_envelope",
    "organisation",
    "period",
    "person",
    "write_277ca",
    "write_835",
    "write_837",
]
