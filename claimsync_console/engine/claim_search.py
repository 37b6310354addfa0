"""Claims an operator can remap an unmatched payment to, found by what is on the paper in front
of them: the patient control number (or its start) or the claim's id.

The matcher's own candidates come first in the console; this is the fallback when none of them
is right. Results carry no PHI (ids, amounts, dates, payer), like the candidates do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.store import queries_claim_search as q
from claimsync_console.store.models import ClaimRow

MAX_RESULTS = 20
MIN_PREFIX = 2  # one character would match a tenth of the claims: not a search


@dataclass(frozen=True, slots=True)
class ClaimHit:
    claim_id: int
    patient_control_number: str
    payer_id: str
    billed_amount: Decimal
    service_date_from: date | None
    frequency_code: str


def search_claims(
    sessions: sessionmaker[Session],
    text: str,
    *,
    payer_id: str | None = None,
    limit: int = MAX_RESULTS,
) -> list[ClaimHit]:
    """Claims whose id is ``text`` or whose patient control number starts with it; ids first.
    A blank or one-character term finds nothing rather than a random page."""
    term = text.strip()
    if len(term) < MIN_PREFIX and not term.isdigit():
        return []
    with sessions() as session:
        rows = list(q.claims_by_ids(session, [int(term)])) if _is_id(term) else []
        if len(term) >= MIN_PREFIX:
            rows += q.claims_by_pcn_prefix(session, term, limit=limit, payer_id=payer_id)
        hits = [_hit(row) for row in rows]
    # The range is a prefix under a byte-wise collation (C, SQLite's BINARY); under a
    # linguistic one it may let in a neighbour, so the prefix is checked again here.
    hits = [h for h in hits if h.patient_control_number.startswith(term) or str(h.claim_id) == term]
    unique = {hit.claim_id: hit for hit in hits}
    return list(unique.values())[:limit]


def _is_id(term: str) -> bool:
    return term.isdigit() and len(term) < 19  # beyond a BIGINT is not an id


def _hit(row: ClaimRow) -> ClaimHit:
    return ClaimHit(
        claim_id=row.id,
        patient_control_number=row.patient_control_number,
        payer_id=row.payer_identifier,
        billed_amount=row.billed_amount,
        service_date_from=row.service_date_from,
        frequency_code=row.frequency_code,
    )
