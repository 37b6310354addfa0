"""Idempotency keys: the same source gives the same key, forever.

The key travels with a posting to the ERP, which refuses to post a key twice; that is what makes
a retry after a crash safe. So a key must depend only on where the posting comes from, never on
when or how often it is computed (no clock, no database ids that a reload could renumber, no
rules version: a rules fix must not turn a retry into a second posting).

Derivation (every part is joined with a unit separator, then SHA-256, hex):

``clp:<hex>`` and ``rev:<hex>``, a claim payment (``rev`` when CLP02 = 22), over
    ``"clp/v1"``, the file's SHA-256, the transaction's identity (ISA13, GS06, ST02), the CLP's
    sequence in its transaction, the CLP segment's position in the file, and
    :func:`content_digest` of the CLP loop. The position tells apart two identical CLPs in one
    file; the digest makes a different loop at the same position (another file that happens to
    share the coordinates cannot, since the file hash differs) a different key. A reversal and
    its correction sit at different positions with different content, so each has its own key.
``plb:<hex>``, a check's provider-level adjustments (one entry per transaction), over
    ``"plb/v1"``, the file's SHA-256 and the transaction's identity.
``act:<hex>``, an operator action (write-off, approval posting, compensation), over
    ``"act/v1"``, the work item id and the action id: the action row is written once, in the
    same transaction as its outbox posting, so its id is stable.

The same 835 re-sent as a different file gets different keys; ingest quarantines such a re-send
(same sender and ISA13) before anything is posted, so the keys need not catch it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal

from claimsync_console.domain import CENT, Adjustment, ClaimPayment, RemittanceHeader

_SEP = "\x1f"


def _digest(parts: Iterable[object]) -> str:
    return hashlib.sha256(_SEP.join(str(part) for part in parts).encode()).hexdigest()


def _money(value: Decimal | None) -> str:
    """Canonical cents, so ``70``, ``70.0`` and ``70.00`` (e.g. after a database round trip)
    give the same digest."""
    if value is None:
        return ""
    return str(value.quantize(CENT)) if value else "0.00"  # -0.00 (a negated zero) too


def _adjustments(adjustments: Iterable[Adjustment]) -> list[str]:
    return [f"{a.group}-{a.reason_code}={_money(a.amount)}" for a in adjustments]


def content_digest(payment: ClaimPayment) -> str:
    """What the payer said about the claim, in money and codes: the parts a posting is built
    from. Names and member ids are left out (no PHI in keys, and a corrected name is no new
    posting)."""
    parts: list[object] = [
        payment.patient_control_number,
        payment.status_code,
        _money(payment.charge),
        _money(payment.paid),
        _money(payment.patient_responsibility),
        payment.payer_claim_control_number,
        *_adjustments(payment.adjustments),
    ]
    for service in payment.services:
        code = ":".join((service.procedure_qualifier, service.procedure_code, *service.modifiers))
        parts += ["svc", code, _money(service.charge), _money(service.paid)]
        parts += _adjustments(service.adjustments)
    return _digest(parts)


def transaction_identity(header: RemittanceHeader) -> tuple[str, str, str]:
    """ISA13, GS06, ST02: unique for a transaction within one file."""
    return (
        header.interchange_control_number,
        header.group_control_number,
        header.transaction_control_number,
    )


def claim_payment_key(file_sha256: str, header: RemittanceHeader, payment: ClaimPayment) -> str:
    """The key of one CLP's entry; reversals (CLP02 = 22) read ``rev:``."""
    prefix = "rev" if payment.is_reversal else "clp"
    parts = (
        "clp/v1",
        file_sha256,
        *transaction_identity(header),
        payment.sequence,
        payment.segment_start,
        content_digest(payment),
    )
    return f"{prefix}:{_digest(parts)}"


def plb_key(file_sha256: str, header: RemittanceHeader) -> str:
    """The key of a check's provider-level adjustment entry."""
    return f"plb:{_digest(('plb/v1', file_sha256, *transaction_identity(header)))}"


def action_key(work_item_id: int | str, action_id: int | str) -> str:
    """The key of an operator action's posting (write-off, compensating reversal...)."""
    return f"act:{_digest(('act/v1', work_item_id, action_id))}"
