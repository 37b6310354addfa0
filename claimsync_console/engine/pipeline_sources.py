"""The posting pipeline's sources and where a built one goes (split from ``engine.pipeline``).

A :class:`Source` is one thing that posts once: a claim payment, or a check's PLB pairs. Built
with the rules it becomes a plan, the missing rules, or the claim's balancing error; a plan is
then routed (:func:`route`) to the outbox, or to an ``approval`` item holding the serialised
entry when an amount is over the engine's tier. Everything here runs in the caller's
transaction and never commits; ``engine.pipeline`` re-exports the public names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.domain import (
    ZERO,
    ClaimPayment,
    JournalEntry,
    ProviderAdjustment,
    RemittanceHeader,
)
from claimsync_console.engine import keys
from claimsync_console.engine import workitems as wi
from claimsync_console.engine.outbox import enqueue_entry, entry_from_json, entry_to_json
from claimsync_console.engine.posting import (
    ClaimOutOfBalanceError,
    MissingRules,
    PostingPlan,
    approval_needed,
    build_payment_entry,
    build_plb_entry,
)
from claimsync_console.engine.rules import AUTO, RulesBook
from claimsync_console.store.models_engine import WorkItem

OUT_OF_BALANCE = "claim out of balance"
Headers = dict[int, tuple[RemittanceHeader, str]]
Built = PostingPlan | MissingRules | ClaimOutOfBalanceError


def entry_date_for(header: RemittanceHeader, now: datetime) -> date:
    """BPR16, else the 835's production date (DTM*405), else the run date."""
    return header.payment_date or header.production_date or now.date()


@dataclass(frozen=True, slots=True)
class Source:
    """One thing that posts once: a claim payment (``payment`` set) or a check's PLB pairs."""

    outbox_kind: str
    source_key: str
    remittance_id: int
    header: RemittanceHeader
    cash: Decimal  # what it moves for the check: CLP04, or −Σ PLB
    payment: ClaimPayment | None = None
    claim_payment_id: int | None = None
    plbs: tuple[ProviderAdjustment, ...] = ()

    def build(self, rules: RulesBook, now: datetime) -> Built:
        """The plan, the missing rules, or the claim's balancing error (returned, not raised)."""
        on, key = entry_date_for(self.header, now), self.source_key
        try:
            if self.payment is not None:
                return build_payment_entry(
                    self.header, self.payment, rules, source_key=key, entry_date=on
                )
            return build_plb_entry(self.header, self.plbs, rules, source_key=key, entry_date=on)
        except ClaimOutOfBalanceError as exc:
            return exc

    def item_fields(self) -> dict[str, Any]:
        fields = {
            "remittance_id": self.remittance_id,
            "trace_number": self.header.trace_number,
            "payer_id": wi.normalise_payer_id(self.header.payer.identifier),
            "payer_name": self.header.payer.name,
        }
        if self.payment is not None:
            fields["claim_payment_id"] = self.claim_payment_id
            fields["patient_control_number"] = self.payment.patient_control_number
        return fields

    def outbox_fields(self, plan: PostingPlan) -> dict[str, Any]:
        """``enqueue_entry``'s keyword arguments, JSON-safe (amounts as decimal strings)."""
        assert plan.entry is not None
        return {
            "kind": self.outbox_kind,
            "amount": str(plan.entry.total_debit),
            "cash_amount": str(plan.cash),
            "remittance_id": self.remittance_id,
            "trace_number": self.header.trace_number,
            "claim_payment_id": self.claim_payment_id,
        }


def payment_source(
    claim_payment_id: int,
    remittance_id: int,
    payment: ClaimPayment,
    header: tuple[RemittanceHeader, str],
) -> Source:
    hdr, sha = header
    kind = "reversal" if payment.is_reversal else "payment"
    key = keys.claim_payment_key(sha, hdr, payment)
    return Source(kind, key, remittance_id, hdr, payment.paid, payment, claim_payment_id)


def plb_source(
    remittance_id: int, plbs: Sequence[ProviderAdjustment], header: tuple[RemittanceHeader, str]
) -> Source:
    hdr, sha = header
    cash = -sum((p.amount for p in plbs), ZERO)
    return Source("plb", keys.plb_key(sha, hdr), remittance_id, hdr, cash, plbs=tuple(plbs))


# -- what a built source turns into ------------------------------------------------------------


def route(
    session: Session,
    source: Source,
    plan: PostingPlan,
    rules: RulesBook,
    *,
    now: datetime,
    requested_by: str,
    work_item_id: int | None = None,
) -> tuple[str, int | None]:
    """('nothing', None), ('approval', item id) or ('enqueued', outbox id)."""
    if plan.entry is None:
        return "nothing", None
    posting = source.outbox_fields(plan)
    needed = approval_needed(plan, rules, AUTO)
    if needed is None:
        return "enqueued", _enqueue(session, plan.entry, posting, now, work_item_id)
    details = {
        "posting": {**posting, "entry": entry_to_json(plan.entry)},
        "cash_amount": str(plan.cash),
        "required_role": needed.required_role,
        "approval_kind": needed.kind,
        "beyond_all_tiers": needed.beyond_all_tiers,
        "rules_digest": rules.digest,
    }
    opened = wi.open_approval(
        session,
        source_key=source.source_key,
        amount=needed.amount,
        reason_code=needed.code,
        threshold=needed.limit,
        requested_by=requested_by,
        now=now,
        details=details,
        **source.item_fields(),
    )
    return "approval", opened.id


def _enqueue(
    session: Session,
    entry: JournalEntry,
    posting: dict[str, Any],
    now: datetime,
    item_id: int | None,
) -> int:
    money = {"amount": Decimal(posting["amount"]), "cash_amount": Decimal(posting["cash_amount"])}
    return enqueue_entry(session, entry, **{**posting, **money}, now=now, work_item_id=item_id)


def enqueue_approved(session: Session, item: WorkItem, *, now: datetime) -> int:
    """Queue the posting an approval item holds (triage's approve); returns the outbox id.
    Idempotent: the entry keeps its source's key, so approving twice queues it once."""
    posting = dict(item.details["posting"])
    entry = entry_from_json(posting.pop("entry"))
    return _enqueue(session, entry, posting, now, item.id)


def problem(source: Source, problem: MissingRules | ClaimOutOfBalanceError, digest: str) -> Any:
    """The mapping_error's error, signature and details for missing rules or a bad claim."""
    details: dict[str, Any] = {"cash_amount": str(source.cash), "rules_digest": digest}
    details["outbox_kind"] = source.outbox_kind
    if isinstance(problem, ClaimOutOfBalanceError):
        details.update(reason=OUT_OF_BALANCE, message=str(problem), missing=[])
        error, signature = f"{OUT_OF_BALANCE}: {problem}", OUT_OF_BALANCE
    else:
        names = sorted({f"{m.kind}:{m.key}" for m in problem.missing})
        details.update(reason="missing rules", missing=names)
        details["problems"] = [str(m) for m in problem.missing]
        error = f"no posting rule for {', '.join(names)}"
        signature = f"missing {', '.join(names)}"[: wi.SIGNATURE_MAX]
    return {"error": error, "error_signature": signature, "details": details}
