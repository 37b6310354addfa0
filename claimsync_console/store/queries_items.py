"""Where a work item came from in the received files: the file and the segment range of the claim
payment (CLP loop), the 277CA claim status or the 835 transaction behind it.

The item screens and ``claimsync items show`` re-read those segments from the stored bytes
(``file_blobs``) rather than from the parsed rows, so an analyst sees exactly what the payer
sent (the bytes themselves: ``queries.get_blob``). Take a Session, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claimsync_console.store.models import (
    ClaimPaymentRow,
    ClaimStatusRow,
    Remittance,
    SourceFile,
)


@dataclass(frozen=True, slots=True)
class SourceRange:
    """Segments ``segment_start``..``segment_end`` (1-based, inclusive; None: to the end) of
    the file ``sha256``. ``kind`` says what the range is: claim_payment, claim_status or
    remittance."""

    kind: str
    row_id: int
    file_id: int
    file_name: str
    sha256: str
    segment_start: int
    segment_end: int | None


def _range(session: Session, kind: str, model: Any, row_id: int) -> SourceRange | None:
    found = session.execute(
        select(
            model.id,
            SourceFile.id,
            SourceFile.name,
            SourceFile.sha256,
            model.segment_start,
            model.segment_end,
        )
        .join(SourceFile, SourceFile.id == model.source_file_id)
        .where(model.id == row_id)
    ).one_or_none()
    return None if found is None else SourceRange(kind, *found)


def claim_payment_range(session: Session, claim_payment_id: int) -> SourceRange | None:
    return _range(session, "claim_payment", ClaimPaymentRow, claim_payment_id)


def claim_status_range(session: Session, claim_status_id: int) -> SourceRange | None:
    return _range(session, "claim_status", ClaimStatusRow, claim_status_id)


def remittance_range(session: Session, remittance_id: int) -> SourceRange | None:
    return _range(session, "remittance", Remittance, remittance_id)
