"""Read models behind ``claimsync status`` and the console dashboard."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.store import queries_status as q


def store_summary(session: Session) -> dict[str, Any]:
    """What the store holds, JSON-ready (money as decimal strings)."""
    claims, billed = q.claim_totals(session)
    payments, paid = q.claim_payment_totals(session)
    checks, payment_total = q.remittance_totals(session)
    return {
        "files": q.source_file_counts(session),
        "claims": claims,
        "billed_total": str(billed),
        "acknowledgements": q.claim_status_counts(session),
        "remittances": checks,
        "payment_total": str(payment_total),
        "claim_payments": payments,
        "paid_total": str(paid),
    }
