"""Claim look-ups for the console's remap picker: by patient control number prefix or claim id.

A prefix is searched as a range (``pcn >= 'ABC' AND pcn < 'ABC\\U0010ffff'``) rather than
``LIKE 'ABC%'``, so both SQLite (whose LIKE is case-insensitive and skips the index) and
PostgreSQL (whose LIKE needs a text_pattern_ops index) walk ``ix_claims_pcn_payer``. Take a
Session, never commit.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from claimsync_console.store.models import ClaimRow

#: Greater than any character a patient control number holds (X12 basic/extended sets).
_PREFIX_END = "\U0010ffff"


def claims_by_pcn_prefix(
    session: Session, prefix: str, *, limit: int, payer_id: str | None = None
) -> Sequence[ClaimRow]:
    """Claims whose patient control number starts with ``prefix``, in PCN order, newest first
    within one PCN (the latest version of a claim is the one usually meant)."""
    query = select(ClaimRow).where(
        ClaimRow.patient_control_number >= prefix,
        ClaimRow.patient_control_number < prefix + _PREFIX_END,
    )
    if payer_id:
        query = query.where(ClaimRow.payer_identifier == payer_id)
    query = query.order_by(ClaimRow.patient_control_number, ClaimRow.id.desc()).limit(limit)
    return session.scalars(query).all()


def claims_by_ids(session: Session, ids: Sequence[int]) -> Sequence[ClaimRow]:
    if not ids:
        return []
    return session.scalars(select(ClaimRow).where(ClaimRow.id.in_(list(ids)))).all()
