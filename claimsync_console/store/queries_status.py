"""Read models for status screens: counts and dollar totals from indexed columns only."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claimsync_console.domain import ZERO
from claimsync_console.store.models import (
    ClaimPaymentRow,
    ClaimRow,
    ClaimStatusRow,
    Remittance,
    SourceFile,
)


def _money(value: object) -> Decimal:
    """SUM over a Money column comes back through the Money type already, as Decimal dollars."""
    if isinstance(value, Decimal):
        return value
    return ZERO if value in (None, 0) else Decimal(str(value))


def source_file_counts(session: Session) -> dict[str, int]:
    """Files per ingest status (received, loaded, quarantined)."""
    rows = session.execute(select(SourceFile.status, func.count()).group_by(SourceFile.status))
    return {status: count for status, count in rows}


def claim_totals(session: Session) -> tuple[int, Decimal]:
    """Billed claims and their billed total."""
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(ClaimRow.__table__.c.billed_amount), 0))
    ).one()
    return count, _money(total)


def claim_payment_totals(session: Session) -> tuple[int, Decimal]:
    """Claim payments (CLP) and the sum of CLP04."""
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(ClaimPaymentRow.__table__.c.paid), 0))
    ).one()
    return count, _money(total)


def remittance_totals(session: Session) -> tuple[int, Decimal]:
    """835 transactions (checks) and the sum of BPR02."""
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(Remittance.__table__.c.payment_amount), 0))
    ).one()
    return count, _money(total)


def claim_status_counts(session: Session) -> dict[str, int]:
    """277CA acknowledgements per status (accepted, rejected, ...)."""
    rows = session.execute(
        select(ClaimStatusRow.status, func.count()).group_by(ClaimStatusRow.status)
    )
    return {status: count for status, count in rows}
