"""Opening work items of each kind with the same fields filled the same way.

Matching, posting and the outbox worker all open items; going through these helpers keeps the
queue screens consistent: ``amount`` is always the dollars at stake for that kind, ``payer_id``
is always the normalised payer id, ``source_key`` always names the row that caused the item (so
reprocessing finds the item it already opened), and ``error_signature`` groups identical
failures. Nothing here commits; nothing here logs PHI.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claimsync_console.domain import WorkItemKind
from claimsync_console.store.models import ClaimPaymentRow, Remittance
from claimsync_console.store.models_engine import OutboxEntry, PostingAttempt
from claimsync_console.store.queries_engine import Opened, open_work_item

SIGNATURE_MAX = 200
_QUOTED_NUMBERS = re.compile(r"""(['"])[^'"]*\d[^'"]*\1""")
_TOKENS_WITH_DIGITS = re.compile(r"[\w.:/@#+-]*\d[\w.:/@#+-]*")
_REPEATS = re.compile(r"#(?:[\s,;]*#)+")
_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^0-9A-Z]")


def normalise_payer_id(value: str | None) -> str:
    """Payer ids compared across 837 NM1*PR (PI), 835 N1*PR / REF*2U and 277CA: upper case,
    letters and digits only, so 'smp-mb ' and 'SMPMB' are one payer."""
    return _NOT_ALNUM.sub("", (value or "").upper())


def check_payer(identifier: str | None, name: str) -> str:
    """Who a check is from, for telling checks apart: the payer id, else its name (a few
    published 835s carry no N1*PR id)."""
    return normalise_payer_id(identifier) or name.strip().upper()


def error_signature(message: str) -> str:
    """The message with every id, amount and count replaced by '#', so that 4,000 failures
    that differ only in entry keys or amounts group into one line."""
    text = _QUOTED_NUMBERS.sub(r"\1#\1", message)
    text = _TOKENS_WITH_DIGITS.sub("#", text)
    text = _REPEATS.sub("#", text)
    return _SPACES.sub(" ", text).strip()[:SIGNATURE_MAX]


@dataclass(frozen=True, slots=True)
class PaymentRef:
    """What a work item needs from a claim payment and its remittance header."""

    claim_payment_id: int
    remittance_id: int
    patient_control_number: str
    status_code: str
    charge: Decimal
    paid: Decimal
    payer_id: str
    payer_name: str
    trace_number: str

    def item_fields(self) -> dict[str, Any]:
        return {
            "claim_payment_id": self.claim_payment_id,
            "remittance_id": self.remittance_id,
            "patient_control_number": self.patient_control_number,
            "payer_id": self.payer_id,
            "payer_name": self.payer_name,
            "trace_number": self.trace_number,
        }

    @property
    def source_key(self) -> str:
        return f"claim_payment:{self.claim_payment_id}"


def load_payment_ref(session: Session, claim_payment_id: int) -> PaymentRef:
    row = session.execute(
        select(
            ClaimPaymentRow.id,
            ClaimPaymentRow.remittance_id,
            ClaimPaymentRow.patient_control_number,
            ClaimPaymentRow.status_code,
            ClaimPaymentRow.charge,
            ClaimPaymentRow.paid,
            Remittance.payer_identifier,
            Remittance.payer_name,
            Remittance.trace_number,
        )
        .join(Remittance, Remittance.id == ClaimPaymentRow.remittance_id)
        .where(ClaimPaymentRow.id == claim_payment_id)
    ).one()
    return PaymentRef(*row[:6], normalise_payer_id(row[6]), row[7], row[8])


def unmatched_item(
    payment: PaymentRef, *, reason: str, candidates: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """A payment with no claim. The amount is CLP04 as paid (negative for a reversal): the cash
    this item holds back from the check, which reconciliation counts as explained."""
    return {
        "kind": WorkItemKind.UNMATCHED_REMITTANCE,
        "source_key": payment.source_key,
        "amount": payment.paid,
        "error": reason,
        "error_signature": error_signature(reason),
        "details": {
            "reason": reason,
            "status_code": payment.status_code,
            "charge": str(payment.charge),
            "candidates": list(candidates),
        },
        **payment.item_fields(),
    }


def open_unmatched(
    session: Session,
    payment: PaymentRef,
    *,
    reason: str,
    candidates: Sequence[dict[str, Any]],
    now: datetime,
) -> Opened:
    return open_work_item(
        session, now=now, **unmatched_item(payment, reason=reason, candidates=candidates)
    )


def denial_item(
    payment: PaymentRef, *, claim_id: int | None, carcs: Iterable[str]
) -> dict[str, Any]:
    """The payer denied the claim: the charge (CLP03) is what is at stake."""
    codes = sorted(set(carcs))
    reason = f"denied ({', '.join(codes) or 'CLP02 ' + payment.status_code})"
    return {
        "kind": WorkItemKind.DENIAL,
        "source_key": payment.source_key,
        "amount": payment.charge,
        "claim_id": claim_id,
        "error": reason,
        "error_signature": reason,
        "details": {"carcs": codes, "status_code": payment.status_code, "paid": str(payment.paid)},
        **payment.item_fields(),
    }


def open_denial(
    session: Session,
    payment: PaymentRef,
    *,
    claim_id: int | None,
    carcs: Iterable[str],
    now: datetime,
) -> Opened:
    return open_work_item(session, now=now, **denial_item(payment, claim_id=claim_id, carcs=carcs))


def rejected_item(
    *,
    claim_status_id: int,
    claim_id: int | None,
    patient_control_number: str,
    payer_id: str,
    payer_name: str,
    amount: Decimal,
    codes: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """The 277CA rejected the claim; the billed amount is at stake until it is billed again."""
    shown = sorted({f"{c.get('category', '')}:{c.get('code', '')}" for c in codes})
    reason = f"rejected by 277CA ({', '.join(shown)})"
    return {
        "kind": WorkItemKind.REJECTED_CLAIM,
        "source_key": f"claim_status:{claim_status_id}",
        "amount": amount,
        "claim_id": claim_id,
        "patient_control_number": patient_control_number,
        "payer_id": normalise_payer_id(payer_id),
        "payer_name": payer_name,
        "error": reason,
        "error_signature": reason,
        "details": {"codes": list(codes), "claim_status_id": claim_status_id},
    }


def open_rejected(session: Session, *, now: datetime, **fields: Any) -> Opened:
    """``fields`` are ``rejected_item``'s arguments."""
    return open_work_item(session, now=now, **rejected_item(**fields))


def open_mapping_error(
    session: Session,
    *,
    missing: Sequence[str],
    source_key: str,
    amount: Decimal,
    now: datetime,
    payment: PaymentRef | None = None,
    details: dict[str, Any] | None = None,
    **fields: Any,
) -> Opened:
    """A posting that has no rule for something (``missing`` names each, e.g. 'payer:SMPXX',
    'carc:CO-B7', 'facility:22'). The signature keeps the names, which are the grouping."""
    names = sorted(set(missing))
    reason = f"no posting rule for {', '.join(names)}"
    context = payment.item_fields() if payment is not None else {}
    return open_work_item(
        session,
        kind=WorkItemKind.MAPPING_ERROR,
        source_key=source_key,
        amount=amount,
        now=now,
        reopen=True,
        error=reason,
        error_signature=f"missing {', '.join(names)}"[:SIGNATURE_MAX],
        details={"missing": names, **(details or {})},
        **{**context, **fields},
    )


def open_dead_letter(
    session: Session,
    outbox: OutboxEntry,
    attempts: Sequence[PostingAttempt],
    *,
    now: datetime,
    **fields: Any,
) -> Opened:
    """A posting the ERP refused or that ran out of retries, with its whole error history.
    Reopens the item if a retry of it died again."""
    last_error = outbox.last_error or (attempts[-1].error if attempts else "")
    history = [
        {
            "at": a.attempted_at.isoformat(),
            "outcome": a.outcome,
            "error": a.error,
            "latency_ms": a.latency_ms,
        }
        for a in attempts
    ]
    return open_work_item(
        session,
        kind=WorkItemKind.DEAD_LETTER,
        source_key=f"outbox:{outbox.id}",
        amount=outbox.amount,
        now=now,
        reopen=True,
        outbox_id=outbox.id,
        remittance_id=outbox.remittance_id,
        claim_payment_id=outbox.claim_payment_id,
        trace_number=outbox.trace_number,
        error=last_error,
        error_signature=error_signature(last_error),
        details={
            "idempotency_key": outbox.idempotency_key,
            "outbox_kind": outbox.kind,
            "cash_amount": str(outbox.cash_amount),
            "attempts": history,
        },
        **{**_payment_fields(session, outbox), **fields},
    )


def _payment_fields(session: Session, outbox: OutboxEntry) -> dict[str, Any]:
    """Payer and claim number for a dead letter, so an analyst can filter and sort the
    dead-letter queue by payer like every other queue."""
    if outbox.claim_payment_id is None:
        return {}
    fields = load_payment_ref(session, outbox.claim_payment_id).item_fields()
    for already_set in ("trace_number", "remittance_id", "claim_payment_id"):
        fields.pop(already_set)
    return fields


def open_approval(
    session: Session,
    *,
    source_key: str,
    amount: Decimal,
    reason_code: str,
    threshold: Decimal,
    requested_by: str,
    now: datetime,
    payment: PaymentRef | None = None,
    details: dict[str, Any] | None = None,
    **fields: Any,
) -> Opened:
    """An adjustment or write-off over its threshold waits for a supervisor (never the
    requester, which is why ``requested_by`` is recorded)."""
    reason = f"{reason_code} over the approval threshold"
    context = payment.item_fields() if payment is not None else {}
    return open_work_item(
        session,
        kind=WorkItemKind.APPROVAL,
        source_key=source_key,
        amount=amount,
        now=now,
        requested_by=requested_by,
        error=reason,
        error_signature=reason,
        details={"reason_code": reason_code, "threshold": str(threshold), **(details or {})},
        **{**context, **fields},
    )
