"""Quarantined 835 files in the reconciliation: their deposits are in no check's figures, so
the report says how many there are and, where the kept bytes can be read, what they carry."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.domain import ZERO, RemittanceHeader, cash_to_provider
from claimsync_console.store import queries_reconcile as q

#: Larger kept files are counted but not read for their BPR02 (the report stays quick).
QUARANTINE_READ_MAX = 8 * 1024 * 1024
#: Findings after which the BPR02s read from a file cannot be trusted as its deposit.
_UNREADABLE = frozenset({"not-x12", "encoding", "missing-bpr"})


@dataclass(frozen=True, slots=True)
class QuarantinedRemittances:
    """835 files the ingest quarantined: their money is in no check above, so "all
    reconciled" says nothing about them. ``bpr02``: Σ BPR02 (signed as cash) of the files
    whose headers could be read; ``unreadable``: files counted whose BPR02 could not be."""

    files: int = 0
    bpr02: Decimal = ZERO
    unreadable: int = 0
    source_file_ids: tuple[int, ...] = ()


def quarantined_remittances(
    session: Session, *, trace: str | None = None
) -> QuarantinedRemittances:
    """Every quarantined 835 file (with ``trace``, those whose kept bytes name that TRN02),
    its BPR02s read from the kept bytes with the 835 reader (headers only are used)."""
    files, total, unreadable, ids = 0, ZERO, 0, []
    for kept in q.quarantined_835_files(session, max_bytes=QUARANTINE_READ_MAX):
        headers = None if kept.content is None else _kept_headers(kept.content, kept.name)
        if trace is not None and not any(h.trace_number == trace for h in headers or ()):
            continue
        files += 1
        ids.append(kept.id)
        if headers:
            total += sum((_signed_header(h) for h in headers), ZERO)
        else:
            unreadable += 1
    return QuarantinedRemittances(files, total, unreadable, tuple(ids))


def _kept_headers(content: bytes, name: str) -> list[RemittanceHeader] | None:
    """The file's 835 headers, or None when its BPR02s cannot be read (not X12, no BPR, a
    BPR02 that is not an amount): then the file is counted with no amount, never as $0."""
    from claimsync_console.x12.document import read_document

    reader = read_document(content, name)
    headers = [item for item in reader if isinstance(item, RemittanceHeader)]
    broken = any(
        f.code in _UNREADABLE or (f.code == "bad-amount" and f.segment_id == "BPR")
        for f in reader.findings
    )
    return None if broken or not headers else headers


def _signed_header(header: RemittanceHeader) -> Decimal:
    return cash_to_provider(header.payment_amount, header.credit_debit)


def quarantined_line(found: QuarantinedRemittances) -> str:
    """'2 quarantined 835 file(s) ($6,310.99) are not in these figures: see claimsync files
    list', or "" when there are none."""
    if not found.files:
        return ""
    read = found.files - found.unreadable
    if found.unreadable == 0:
        amount = f"${found.bpr02:,.2f}"
    elif read:
        amount = f"${found.bpr02:,.2f} in {read}, {found.unreadable} unreadable"
    else:
        amount = "amount unreadable"
    return (
        f"{found.files} quarantined 835 file(s) ({amount}) are not in these figures: "
        "see claimsync files list"
    )


def quarantined_to_json(found: QuarantinedRemittances) -> dict[str, Any]:
    return {
        "files": found.files,
        "bpr02": str(found.bpr02),
        "unreadable": found.unreadable,
        "source_file_ids": list(found.source_file_ids),
    }
