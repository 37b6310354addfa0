"""The journal-entry builder: pure functions from a remittance and the rules to a balanced entry.

Nothing here touches a database or the ERP, so the engine can build an entry inside the same
transaction that records the state change, store it in the outbox, and post it later.

Sign conventions. Every amount is first turned into a *debit-positive* signed amount; a line is
then a debit when that is positive and a credit when negative, and a zero is dropped (the ledger
refuses zero lines). So a negative CAS, or a reversal (CLP02 = 22, every amount negated), simply
lands on the other side, and no line is ever negative.

One claim payment (CLP) gives::

    cash clearing (payer)      +CLP04                       debit when paid
    adjustment account (CAS)   +amount, per CARC            debit (PR: transfer to patient)
    payer receivable           −(CLP03 − denied amounts)    credit

which balances exactly when the claim does (CLP03 − CLP04 = Σ CAS). Decisions:

* CAS with the same CARC on the claim and its lines are summed into one line per CARC.
* Denial CARCs (``denial = true`` in the rules, e.g. CO-50) are not posted: their amount stays
  on the payer receivable and the plan lists it in ``denied`` for a ``denial`` item.
* A whole-claim denial (CLP02 = 4 and CLP04 = 0) posts nothing: every CAS amount is ``denied``.
  The item's resolution posts later (a write-off, or the re-adjudicated payment).
* A reversal builds the exact mirror of the original's entry. A reversal of a whole-claim
  denial cannot be told apart from the 835 alone; the engine should reverse the original's
  posting (``ErpAdapter.reverse_entry``), and post nothing when there was none.

The check-level PLB entry (BPR02 = Σ CLP04 − Σ PLB; a positive PLB reduces the check)::

    cash clearing (payer)      −Σ PLB                      credit for a recoupment (WO, FB)
    PLB account (per reason)   +PLB amount                 debit recoupment receivable;
                                                           L6 interest is negative: credit 7100

so Σ over a check's entries of (cash debits − cash credits) = Σ CLP04 − Σ PLB = BPR02.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from claimsync_console.domain import (
    CENT,
    ZERO,
    ClaimPayment,
    JournalEntry,
    JournalLine,
    ProviderAdjustment,
    RemittanceHeader,
    UnbalancedEntryError,
)
from claimsync_console.engine.rules import (
    AUTO,
    AdjustmentRule,
    FacilityRule,
    MissingRule,
    PayerRule,
    RulesBook,
    Tier,
)


class ClaimOutOfBalanceError(UnbalancedEntryError):
    """The CLP itself breaks CLP03 − CLP04 = Σ CAS, so no rule can balance its entry; the
    engine routes it to a person instead of posting a guess."""


@dataclass(frozen=True, slots=True)
class PlannedAmount:
    """One reason's amount, signed as in the source. ``kind``: adjustment, plb, write_off, or
    denied (not posted, ``account`` is None)."""

    kind: str
    code: str
    account: str | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PostingPlan:
    """``entry`` is None when there is nothing to post (``note`` says why)."""

    source_key: str
    entry: JournalEntry | None
    payer_id: str
    facility_id: str
    cost_centre: str
    cash_account: str
    amounts: tuple[PlannedAmount, ...] = ()
    denied: tuple[PlannedAmount, ...] = ()
    note: str = ""

    @property
    def opens_denial(self) -> bool:
        return bool(self.denied)

    @property
    def denied_total(self) -> Decimal:
        return sum((d.amount for d in self.denied), ZERO)

    @property
    def cash(self) -> Decimal:
        """Net debit to cash clearing: this entry's share of the deposit."""
        if self.entry is None:
            return ZERO
        lines = [ln for ln in self.entry.lines if ln.account == self.cash_account]
        return sum((ln.debit - ln.credit for ln in lines), ZERO)


@dataclass(frozen=True, slots=True)
class MissingRules:
    """Why a source cannot post: each missing rule once, in the order met."""

    source_key: str
    missing: tuple[MissingRule, ...]

    def __str__(self) -> str:
        return "; ".join(str(m) for m in self.missing)


@dataclass(frozen=True, slots=True)
class ApprovalRequirement:
    """``requested_by`` may post up to ``limit``; ``required_role`` must approve ``amount``.
    ``beyond_all_tiers``: no tier reaches the amount, so the last role decides."""

    requested_by: str
    required_role: str
    kind: str
    code: str
    amount: Decimal
    limit: Decimal
    beyond_all_tiers: bool = False


# --------------------------------------------------------------------------- builders


def build_payment_entry(
    header: RemittanceHeader,
    payment: ClaimPayment,
    rules: RulesBook,
    *,
    source_key: str,
    entry_date: date,
) -> PostingPlan | MissingRules:
    """One claim payment's entry, or every rule it lacks."""
    payer, facility = _parties(header, rules)
    found = [(a, rules.adjustment(a.group, a.reason_code)) for a in payment.all_adjustments]
    missing = _missing(source_key, [payer, facility, *(rule for _, rule in found)])
    if missing is not None:
        return missing
    assert isinstance(payer, PayerRule) and isinstance(facility, FacilityRule)
    full_denial = payment.is_denial and not payment.paid
    posted: list[PlannedAmount] = []
    denied: list[PlannedAmount] = []
    for cas, rule in found:
        assert isinstance(rule, AdjustmentRule)
        code = f"{cas.group}-{cas.reason_code}"
        if full_denial or rule.denial:
            denied.append(PlannedAmount("denied", code, None, cas.amount))
        else:
            posted.append(PlannedAmount("adjustment", code, rule.account, cas.amount))
    plan = _plan(source_key, payer, facility, posted, denied)
    if full_denial:
        return replace(plan, note="denial: nothing posted, the charge stays open on the receivable")
    if payment.charge - payment.paid != payment.adjustment_total:
        raise ClaimOutOfBalanceError(
            f"claim payment {payment.patient_control_number} (segment {payment.segment_start}):"
            f" CLP03 {payment.charge} - CLP04 {payment.paid} != CAS {payment.adjustment_total}"
        )
    signed = [(payer.cash_clearing, payment.paid, "CLP04 paid")]
    signed += [(p.account or "", p.amount, p.code) for p in posted]
    signed.append((payer.receivable, -(payment.charge - plan.denied_total), "CLP03 charge"))
    what = "reversal" if payment.is_reversal else f"status {payment.status_code}"
    description = f"ERA {header.trace_number} claim {payment.patient_control_number} ({what})"
    return _with_entry(plan, signed, description, header.trace_number, entry_date)


def build_plb_entry(
    header: RemittanceHeader,
    plbs: Sequence[ProviderAdjustment],
    rules: RulesBook,
    *,
    source_key: str,
    entry_date: date,
) -> PostingPlan | MissingRules:
    """A check's provider-level adjustments in one entry (see the module docstring's signs)."""
    payer, facility = _parties(header, rules)
    accounts = [rules.plb_account(p.reason_code) for p in plbs]
    missing = _missing(source_key, [payer, facility, *accounts])
    if missing is not None:
        return missing
    assert isinstance(payer, PayerRule) and isinstance(facility, FacilityRule)
    amounts = [
        PlannedAmount("plb", p.reason_code, str(account), p.amount)
        for p, account in zip(plbs, accounts, strict=True)
    ]
    plan = _plan(source_key, payer, facility, amounts)
    total = sum((p.amount for p in plbs), ZERO)
    signed = [(payer.cash_clearing, -total, "PLB total")]
    signed += [(a.account or "", a.amount, f"PLB {a.code}") for a in amounts]
    description = f"ERA {header.trace_number} provider-level adjustments"
    return _with_entry(plan, signed, description, header.trace_number, entry_date)


def build_write_off_entry(
    *,
    reason: str,
    amount: Decimal,
    payer_id: str,
    facility_id: str,
    rules: RulesBook,
    source_key: str,
    entry_date: date,
    reference: str = "",
) -> PostingPlan | MissingRules:
    """An operator's write-off: debit the reason's account, credit the payer receivable."""
    payer, facility = rules.payer(payer_id), rules.facility(facility_id)
    account = rules.write_off_account(reason)
    missing = _missing(source_key, [payer, facility, account])
    if missing is not None:
        return missing
    assert isinstance(payer, PayerRule) and isinstance(facility, FacilityRule)
    planned = PlannedAmount("write_off", reason, str(account), amount)
    plan = _plan(source_key, payer, facility, [planned])
    signed = [(str(account), amount, f"write-off {reason}"), (payer.receivable, -amount, reason)]
    description = f"Write-off {reason} {reference}".strip()
    return _with_entry(plan, signed, description, reference, entry_date)


# --------------------------------------------------------------------------- approvals


def approval_needed(plan: PostingPlan, rules: RulesBook, role: str) -> ApprovalRequirement | None:
    """The most senior approval the plan needs when ``role`` asks for it, or None.

    Amounts are summed per reason (claim and line level together) and compared unsigned, so a
    reversal needs what its original needed. A role absent from a reason's tiers may post
    nothing of it on its own; ``auto`` (the engine) never approves.
    """
    totals: dict[tuple[str, str], Decimal] = {}
    for item in plan.amounts:
        key = (item.kind, item.code)
        totals[key] = totals.get(key, ZERO) + item.amount
    worst: tuple[int, ApprovalRequirement] | None = None
    for (kind, code), signed in totals.items():
        amount, tiers = abs(signed), rules.tiers(kind, code)
        limit = _limit(tiers, role)
        if not tiers or limit is None or amount <= limit:
            continue
        rank, approver, beyond = _approver(tiers, amount, role)
        found = ApprovalRequirement(role, approver, kind, code, amount, limit, beyond)
        if worst is None or (rank, amount) > (worst[0], worst[1].amount):
            worst = (rank, found)
    return None if worst is None else worst[1]


def _limit(tiers: tuple[Tier, ...], role: str) -> Decimal | None:
    for tier in tiers:
        if tier.role == role:
            return tier.max_amount
    return ZERO


def _approver(tiers: tuple[Tier, ...], amount: Decimal, role: str) -> tuple[int, str, bool]:
    """(rank, role, beyond all tiers): the lowest tier above the requester's that covers the
    amount; when none does, the top one (a peer, when the requester holds the top role)."""
    own = next((i for i, tier in enumerate(tiers) if tier.role == role), -1)
    above = [(i, tier) for i, tier in enumerate(tiers) if i > own and tier.role != AUTO]
    for rank, tier in above:
        if tier.max_amount is None or amount <= tier.max_amount:
            return rank, tier.role, False
    rank = above[-1][0] if above else own
    return rank, tiers[rank].role, True


# --------------------------------------------------------------------------- helpers


def _parties(
    header: RemittanceHeader, rules: RulesBook
) -> tuple[PayerRule | MissingRule, FacilityRule | MissingRule]:
    """Payer by N1*PR/REF*2U, else TRN03 (never ISA06: that is often a clearinghouse);
    facility by the payee (N1*PE) identifier."""
    payer = rules.payer(header.payer.identifier, header.originator_id)
    if isinstance(payer, MissingRule):
        payer = MissingRule("payer", payer.key, header.payer.name)
    facility = rules.facility(header.payee.identifier)
    if isinstance(facility, MissingRule):
        facility = MissingRule("facility", facility.key, header.payee.name)
    return payer, facility


def _missing(source_key: str, results: Iterable[object]) -> MissingRules | None:
    seen: dict[tuple[str, str], MissingRule] = {}
    for result in results:
        if isinstance(result, MissingRule):
            seen.setdefault((result.kind, result.key), result)
    return MissingRules(source_key, tuple(seen.values())) if seen else None


def _plan(
    source_key: str,
    payer: PayerRule,
    facility: FacilityRule,
    amounts: Sequence[PlannedAmount],
    denied: Sequence[PlannedAmount] = (),
) -> PostingPlan:
    return PostingPlan(
        source_key=source_key,
        entry=None,
        payer_id=payer.payer_id,
        facility_id=facility.identifier,
        cost_centre=facility.cost_centre,
        cash_account=payer.cash_clearing,
        amounts=tuple(amounts),
        denied=tuple(denied),
    )


def _with_entry(
    plan: PostingPlan,
    signed: Sequence[tuple[str, Decimal, str]],
    description: str,
    reference: str,
    entry_date: date,
) -> PostingPlan:
    """Merge the debit-positive amounts per (account, memo), drop zeros, assert balance."""
    merged: dict[tuple[str, str], Decimal] = {}
    for account, amount, memo in signed:
        merged[(account, memo)] = merged.get((account, memo), ZERO) + amount
    lines = tuple(
        _line(account, amount, plan.cost_centre, memo)
        for (account, memo), amount in merged.items()
        if amount
    )
    if not lines:
        return replace(plan, note="every amount is zero: nothing to post")
    entry = JournalEntry(plan.source_key, entry_date, description, lines, reference)
    entry.assert_balanced()
    return replace(plan, entry=entry)


def _line(account: str, amount: Decimal, cost_centre: str, memo: str) -> JournalLine:
    exact = amount.quantize(CENT) if amount == amount.quantize(CENT) else amount
    if exact > 0:
        return JournalLine(account, debit=exact, cost_centre=cost_centre, memo=memo)
    return JournalLine(account, credit=-exact, cost_centre=cost_centre, memo=memo)
