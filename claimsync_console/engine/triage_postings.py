"""The money side of triage actions: a remapped payment's posting, write-off and compensating
entries, and the identities an item's rows hold. Nothing here commits or checks states; the
actions in ``triage_actions`` do that around these calls, in their one transaction.

A remapped payment posts through the pipeline itself (``pipeline.payment_source`` and its
routing), so a hand-matched payment becomes exactly the entry, approval or mapping error that an
automatically matched one would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from claimsync_console.domain import CENT, JournalEntry, JournalLine, dollars
from claimsync_console.engine import pipeline
from claimsync_console.engine.rules import PayerRule, RulesBook
from claimsync_console.engine.workitems import normalise_payer_id
from claimsync_console.store import hydrate
from claimsync_console.store import queries_engine as qe
from claimsync_console.store.models import ClaimPaymentRow, ClaimRow, Remittance
from claimsync_console.store.models_engine import PaymentMatch, WorkItem
from claimsync_console.store.queries_outbox import get_outbox_by_key

REVERSAL = "22"  # CLP02 of a payer's reversal


@dataclass(frozen=True, slots=True)
class Routed:
    """Where a remapped payment's posting went: ``enqueued`` (``target_id`` an outbox row),
    ``approval`` or ``mapping_error`` (an item id), or ``nothing`` (a denial posts nothing)."""

    outcome: str
    target_id: int | None
    detail: str = ""


# -- remap: a payment matched by hand, then posted as the pipeline would ------------------------


def match_by_hand(session: Session, claim_payment_id: int, claim_id: int, now: datetime) -> bool:
    """Record the operator's match (method ``manual``); True when the payment is a reversal.
    The row exists already (matching gives every payment one), but a missing one is written."""
    status_code = session.scalar(
        select(ClaimPaymentRow.status_code).where(ClaimPaymentRow.id == claim_payment_id)
    )
    reversal = status_code == REVERSAL
    values: dict[str, Any] = {
        "claim_id": claim_id,
        "status": "reversal_linked" if reversal else "matched",
        "method": "manual",
        "score": None,
        "matched_at": now,
    }
    if qe.get_payment_match(session, claim_payment_id) is None:
        session.add(PaymentMatch(claim_payment_id=claim_payment_id, warnings=[], **values))
        session.flush()
    else:
        session.execute(
            update(PaymentMatch)
            .where(PaymentMatch.claim_payment_id == claim_payment_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return reversal


def post_payment(
    session: Session, item: WorkItem, rules: RulesBook, *, now: datetime, requested_by: str
) -> Routed:
    """Post the item's claim payment through the pipeline's own routing (one source)."""
    assert item.claim_payment_id is not None and item.remittance_id is not None
    payment = hydrate.load_claim_payments(session, [item.claim_payment_id])[item.claim_payment_id]
    header = hydrate.load_remittance_header(session, item.remittance_id)
    source = pipeline.payment_source(item.claim_payment_id, item.remittance_id, payment, header)
    # The pipeline's own one-source post keeps a hand-matched payment's entry, approval or
    # mapping error identical to an automatic one's.
    summary = pipeline.post_source(session, source, rules, now=now, requested_by=requested_by)
    if summary.enqueued:
        row = get_outbox_by_key(session, source.source_key)
        return Routed("enqueued", row.id if row is not None else None)
    held = "approval" if summary.approvals else "mapping_error"
    if summary.approvals or summary.mapping_errors or summary.out_of_balance:
        found = qe.get_work_item_by_source(session, held, source.source_key)
        if found is not None:
            return Routed(held, found.id, found.error)
    return Routed("nothing", None, "nothing to post (a whole-claim denial posts nothing)")


def remap_problems(session: Session, item: WorkItem, claim: ClaimRow) -> list[str]:
    """Why ``claim`` looks wrong for the item's payment, one sentence each (empty: it looks
    right). A remap with problems needs ``force`` (stop 8); these are the matcher's own tests,
    which an operator's choice skipped:

    - the payer: the 835's payer id against the claim's 837 payer id, normalised as matching
      compares them (a payment with no payer id cannot differ);
    - an active payment already on the claim: a payment matched to it and not reversed (a
      reversal being remapped is expected to find one, so it is not asked);
    - the charge: CLP03 (unsigned, so a reversal compares too) against the billed amount, more
      than a cent apart."""
    assert item.claim_payment_id is not None
    payment = session.get(ClaimPaymentRow, item.claim_payment_id)
    if payment is None:
        return [f"claim payment {item.claim_payment_id} is missing"]
    remit = session.get(Remittance, payment.remittance_id)
    problems: list[str] = []
    paid_by = normalise_payer_id(remit.payer_identifier if remit else item.payer_id)
    billed_to = normalise_payer_id(claim.payer_identifier)
    if paid_by and billed_to and paid_by != billed_to:
        from_name = (remit.payer_name if remit else item.payer_name) or "no name"
        problems.append(
            f"payer differs: the payment is from {paid_by} ({from_name}), claim {claim.id} is"
            f" billed to {billed_to} ({claim.payer_name or 'no name'})"
        )
    if payment.status_code != REVERSAL:
        for other in _active_payments(session, claim.id, payment.id):
            problems.append(f"claim {claim.id} already has an active payment: {other}")
    charge = abs(payment.charge)
    if abs(charge - claim.billed_amount) > CENT:
        problems.append(
            f"charge differs: the payment's charge is {dollars(charge)}, claim {claim.id} billed"
            f" {dollars(claim.billed_amount)}"
        )
    return problems


def _active_payments(session: Session, claim_id: int, except_id: int) -> list[str]:
    """The payments matched to a claim that no reversal took back, as the warning names them."""
    reversed_ids = select(PaymentMatch.reversed_payment_id).where(
        PaymentMatch.claim_id == claim_id, PaymentMatch.reversed_payment_id.is_not(None)
    )
    rows = session.execute(
        select(
            PaymentMatch.work_item_id,
            ClaimPaymentRow.id,
            ClaimPaymentRow.patient_control_number,
            ClaimPaymentRow.paid,
            Remittance.trace_number,
        )
        .join(ClaimPaymentRow, ClaimPaymentRow.id == PaymentMatch.claim_payment_id)
        .join(Remittance, Remittance.id == ClaimPaymentRow.remittance_id)
        .where(
            PaymentMatch.claim_id == claim_id,
            PaymentMatch.status == "matched",
            PaymentMatch.claim_payment_id != except_id,
            PaymentMatch.claim_payment_id.not_in(reversed_ids),
        )
        .order_by(PaymentMatch.claim_payment_id)
    ).all()
    found = []
    for work_item_id, payment_id, pcn, paid, trace in rows:
        via = f", work item {work_item_id}" if work_item_id is not None else ""
        found.append(
            f"claim payment {payment_id} ({pcn}, paid {dollars(paid)},"
            f" check {trace or 'unknown'}{via})"
        )
    return found


# -- write-offs and compensation ---------------------------------------------------------------


def parties(session: Session, item: WorkItem, rules: RulesBook) -> tuple[str, str]:
    """(payer id, facility id) for a write-off's accounts: from the item's remittance (the
    835's payer and payee), else its claim (the 837's payer and billing provider)."""
    payer_ids: list[str] = []
    facility_ids: list[str] = []
    if item.remittance_id is not None:
        remit = session.get(Remittance, item.remittance_id)
        if remit is not None:
            payer_ids += [remit.payer_identifier, remit.originator_id]
            facility_ids.append(remit.payee_identifier)
    if item.claim_id is not None:
        claim = session.get(ClaimRow, item.claim_id)
        if claim is not None:
            payer_ids.append(claim.payer_identifier)
            facility_ids += [claim.billing_provider_npi, claim.billing_provider_identifier]
    payer_ids.append(item.payer_id)
    payer = next(
        (p for p in payer_ids if p and isinstance(rules.payer(p), PayerRule)), item.payer_id
    )
    known = [f for f in facility_ids if f and f in rules.facilities]
    return payer, (known or [f for f in facility_ids if f] or [""])[0]


def compensation(entry: JournalEntry, *, key: str, on: date, note: str) -> JournalEntry:
    """The mirror of ``entry`` (debits and credits swapped), dated ``on``: reversing in the
    current period, as accountants do, keeps a closed period closed."""
    lines = tuple(
        JournalLine(
            line.account,
            debit=line.credit,
            credit=line.debit,
            cost_centre=line.cost_centre,
            memo=f"reversal: {line.memo}"[:200],
        )
        for line in entry.lines
    )
    description = f"Reversal of {entry.idempotency_key[:16]}: {entry.description}"[:200]
    compensating = JournalEntry(key, on, description, lines, entry.reference)
    compensating.assert_balanced()
    return compensating


def posting_fields(item: WorkItem, *, kind: str, amount: Decimal, cash: Decimal) -> dict[str, Any]:
    """``enqueue_entry``'s context for an operator posting about ``item``, JSON-safe, in the
    shape approval items store (``pipeline.enqueue_approved`` reads it back)."""
    return {
        "kind": kind,
        "amount": str(amount),
        "cash_amount": str(cash),
        "remittance_id": item.remittance_id,
        "trace_number": item.trace_number,
        "claim_payment_id": item.claim_payment_id,
    }


def item_context(item: WorkItem) -> dict[str, Any]:
    """The columns an item opened on behalf of ``item`` copies (an approval for a write-off)."""
    return {
        "payer_id": item.payer_id,
        "payer_name": item.payer_name,
        "patient_control_number": item.patient_control_number,
        "trace_number": item.trace_number,
        "claim_payment_id": item.claim_payment_id,
        "claim_id": item.claim_id,
        "remittance_id": item.remittance_id,
    }


# -- PHI, for the audited reveal only ----------------------------------------------------------


def _name(person: dict[str, Any] | None) -> str:
    if not person:
        return ""
    parts = [person.get("first_name", ""), person.get("middle_name", "")]
    first = " ".join(p for p in parts if p)
    last = person.get("last_name", "")
    return f"{last}, {first}" if first and last else last or first


def identity(session: Session, item: WorkItem) -> dict[str, str]:
    """Patient and subscriber as billed (837), else as the payer reported them (835)."""
    people: list[dict[str, Any] | None] = []
    subscriber: dict[str, Any] | None = None
    if item.claim_id is not None:
        claim = session.get(ClaimRow, item.claim_id)
        if claim is not None:
            subscriber = claim.subscriber
            people += [claim.patient, claim.subscriber]
    if item.claim_payment_id is not None:
        cp = session.get(ClaimPaymentRow, item.claim_payment_id)
        if cp is not None:
            people += [cp.corrected_patient, cp.patient, cp.insured]
            subscriber = subscriber or cp.insured or cp.patient
    patient = next((p for p in people if p), None) or {}
    dob = patient.get("date_of_birth") or next(
        (p.get("date_of_birth") for p in people if p and p.get("date_of_birth")), ""
    )
    return {
        "patient_name": _name(patient),
        "member_id": patient.get("member_id", "") or (subscriber or {}).get("member_id", ""),
        "date_of_birth": dob or "",
        "subscriber_name": _name(subscriber),
        "subscriber_member_id": (subscriber or {}).get("member_id", ""),
    }
