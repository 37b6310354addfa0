"""The re-sent check rule: is a new 835 a check the books already hold?

A payer re-sends an ERA (the provider asked for a copy, a clearinghouse replayed a batch)
under a new ISA13 as often as under the old one, and a file can even carry the same interchange
twice. The re-sent interchange rule (interchange.py) sees neither; loading it would post the
same payments twice, and reconciliation would add the two BPR02s up as one deposit and call it
balanced. So a check is identified by what the deposit itself says: TRN02 with its payer,
BPR03 (credit or debit), BPR02, the payment date, the payee, and the claim payments it carries
(their count and Σ CLP04). A check split over several 835s has one TRN02 but different BPR02s and
claims, so it still loads. A match, in a loaded file or earlier in the same file, quarantines
the file with ``resent-check`` for a person to decide (``claimsync files show`` / ``release``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.domain import cash_to_provider, dollars
from claimsync_console.engine.workitems import check_payer
from claimsync_console.store import queries
from claimsync_console.x12.findings import Severity

RESENT_CHECK_CODE = "resent-check"


def _check_key(row: Any) -> tuple[Any, ...]:
    return (
        row.trace_number,
        check_payer(row.payer_identifier, row.payer_name),
        cash_to_provider(row.payment_amount, row.credit_debit),
        row.payment_date,
        row.claim_payment_count,
        row.paid_total,
        row.payee_identifier,
    )


def resent_check(session: Session, source_file_id: int) -> dict[str, Any] | None:
    """The ``resent-check`` finding for this file's first check that is already held (by a
    loaded file, or by an earlier transaction of this one), else None. Runs inside the load's
    transaction, after this file's rows are written."""
    seen: dict[tuple[Any, ...], Any] = {}
    for row in queries.same_trace_remittances(session, source_file_id):
        key = _check_key(row)
        earlier = seen.get(key)
        if earlier is not None and row.source_file_id == source_file_id:
            return _finding(row, earlier, source_file_id)
        seen.setdefault(key, row)
    return None


def _finding(row: Any, earlier: Any, source_file_id: int) -> dict[str, Any]:
    where = (
        f"earlier in this file (transaction {earlier.transaction_control_number})"
        if earlier.source_file_id == source_file_id
        else f"from file {earlier.name} (source file {earlier.source_file_id})"
    )
    dated = f" dated {row.payment_date.isoformat()}" if row.payment_date else ""
    return {
        "severity": Severity.ERROR.value,
        "segment_index": row.segment_start,  # the transaction's header (ST, BPR, TRN)
        "segment_id": "ST",
        "code": RESENT_CHECK_CODE,
        "message": (
            f"check {row.trace_number} from {row.payer_name or row.payer_identifier} for "
            f"{dollars(row.payment_amount)}{dated}, {row.claim_payment_count} claim payments, "
            f"transaction {row.transaction_control_number}, was already loaded {where}; "
            "loading it again would post the same payments twice: a person must decide "
            "(claimsync files show / release)"
        ),
    }
