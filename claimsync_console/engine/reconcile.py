"""Reconciliation: each check's deposit (BPR02) against the cash posted and the cash held back.

The identity the product exists to keep, per check (TRN02 with its payer)::

    BPR02 = Σ cash posted + Σ cash held in open items + unexplained

and ``unexplained`` must be zero. Cash is *posted* when its outbox row is posted (the ERP took
it). Cash is *held*, each with its reason, when it is:

* awaiting posting: an outbox row pending or in flight;
* a dead letter: an outbox row the ERP refused, whose ``dead_letter`` item is open;
* awaiting approval, a mapping error, unmatched, a reversal orphan: an open item of that kind;
* not processed: claim payments (and PLB pairs) the engine has not decided on yet;
* remittance out of balance: the payer's 835 breaks BPR02 = Σ CLP04 − Σ PLB, so part of the
  deposit belongs to no claim payment or PLB the engine could post. Published payers' files do
  this; the ingest recorded the balancing finding, and the line names the payer's error rather
  than leaving it unexplained (finance chases the payer, not the engine).

Denials and rejected claims hold no cash (the payer paid none). An item closed without posting
(ignored, written off) leaves its cash unexplained on purpose: money was deposited and the
books do not show it, which is exactly what finance must see; the variance line names those
items. A debit BPR (BPR03 = D) is the provider paying the payer, so its BPR02 counts negative.

Everything is summed per remittance in SQL (``store.queries_reconcile``); Python only folds the
few rows per remittance into checks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.domain import ZERO, cash_to_provider
from claimsync_console.engine.reconcile_quarantine import (  # the report's API, from here too
    QuarantinedRemittances as QuarantinedRemittances,
)
from claimsync_console.engine.reconcile_quarantine import quarantined_line as quarantined_line
from claimsync_console.engine.reconcile_quarantine import (
    quarantined_remittances as quarantined_remittances,
)
from claimsync_console.engine.reconcile_quarantine import quarantined_to_json
from claimsync_console.engine.workitems import check_payer
from claimsync_console.store import queries_reconcile as q

AWAITING_POSTING = "awaiting posting"
DEAD_LETTER = "dead letter"
AWAITING_APPROVAL = "awaiting approval"
MAPPING_ERROR = "mapping error"
UNMATCHED = "unmatched"
REVERSAL_ORPHAN = "reversal orphan"
NOT_PROCESSED = "not processed"
OUT_OF_BALANCE = "remittance out of balance"
UNEXPLAINED = "unexplained"

#: Every held reason, in the order reports show them; ``held`` always has each key.
HELD_REASONS = (
    AWAITING_POSTING, DEAD_LETTER, AWAITING_APPROVAL, MAPPING_ERROR, UNMATCHED, REVERSAL_ORPHAN,
    NOT_PROCESSED, OUT_OF_BALANCE,
)  # fmt: skip
_ITEM_REASONS = {
    "dead_letter": DEAD_LETTER,
    "approval": AWAITING_APPROVAL,
    "mapping_error": MAPPING_ERROR,
    "unmatched_remittance": UNMATCHED,
    "reversal_orphan": REVERSAL_ORPHAN,
}
_OUTBOX_REASONS = {"pending": AWAITING_POSTING, "in_flight": AWAITING_POSTING}
IDS_PER_LINE = 50  # a line lists at most this many item ids; ``count`` says how many there are


@dataclass(frozen=True, slots=True)
class VarianceLine:
    """Why part of a check is not posted. ``count``: items (or rows) behind the amount;
    ``work_item_ids``: the first of them, oldest first (empty for outbox rows and unprocessed
    payments, which have no item)."""

    reason: str
    amount: Decimal
    count: int
    work_item_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckReconciliation:
    trace: str
    payer: str
    payer_name: str
    payment_date: date | None
    bpr02: Decimal
    posted: Decimal
    held: dict[str, Decimal]
    unexplained: Decimal
    variances: tuple[VarianceLine, ...]
    remittance_ids: tuple[int, ...]

    @property
    def held_total(self) -> Decimal:
        return sum(self.held.values(), ZERO)

    @property
    def balanced(self) -> bool:
        return self.unexplained == ZERO


@dataclass(slots=True)
class _Check:
    """A check being assembled from its remittance rows and their buckets."""

    trace: str
    payer: str
    payer_name: str
    payment_date: date | None = None
    bpr02: Decimal = ZERO
    posted: Decimal = ZERO
    remittance_ids: list[int] = field(default_factory=list)
    held: dict[str, list[Any]] = field(default_factory=dict)  # reason -> [amount, count, ids]

    def hold(self, reason: str, amount: Decimal, count: int, ids: Iterable[int] = ()) -> None:
        line = self.held.setdefault(reason, [ZERO, 0, []])
        line[0] += amount
        line[1] += count
        line[2].extend(ids)

    @property
    def unexplained(self) -> Decimal:
        return self.bpr02 - self.posted - sum((h[0] for h in self.held.values()), ZERO)


def reconcile(session: Session, *, trace: str | None = None) -> list[CheckReconciliation]:
    """Every check (or those with TRN02 ``trace``), by trace then payer. Never commits."""
    rows = q.remittances(session, trace=trace)
    if not rows:
        return []
    checks, of_remittance = _checks(rows)
    scope = None if trace is None else [r.id for r in rows]
    _add_outbox(checks, of_remittance, q.outbox_cash(session, scope))
    item_ids = q.open_item_ids(session, scope, per_group=IDS_PER_LINE)
    for bucket in q.open_item_cash(session, scope):
        check = checks[of_remittance[bucket.remittance_id]]
        ids = item_ids.get((bucket.remittance_id, bucket.key), ())
        check.hold(_ITEM_REASONS[bucket.key], bucket.amount, bucket.count, ids)
    for bucket in q.unprocessed_cash(session, scope):
        checks[of_remittance[bucket.remittance_id]].hold(NOT_PROCESSED, bucket.amount, bucket.count)
    _add_out_of_balance(rows, of_remittance, checks, q.detail_totals(session, scope))
    unbalanced = [c for c in checks.values() if c.unexplained != ZERO]
    abandoned = q.abandoned_item_ids(
        session, [r for c in unbalanced for r in c.remittance_ids], per_group=IDS_PER_LINE
    )
    return [_finish(checks[key], abandoned) for key in sorted(checks)]


CheckKey = tuple[str, str]


def _checks(rows: Sequence[q.RemittanceRow]) -> tuple[dict[CheckKey, _Check], dict[int, CheckKey]]:
    """Remittance rows folded into checks keyed by (trace, payer); a check re-sent in two
    transactions adds up, as the deposit would."""
    checks: dict[CheckKey, _Check] = {}
    of_remittance: dict[int, CheckKey] = {}
    for row in rows:
        payer = check_payer(row.payer_identifier, row.payer_name)
        key = (row.trace_number, payer)
        check = checks.setdefault(key, _Check(row.trace_number, payer, row.payer_name))
        check.bpr02 += _signed(row)
        on = row.payment_date or row.production_date
        if on is not None and (check.payment_date is None or on < check.payment_date):
            check.payment_date = on
        check.remittance_ids.append(row.id)
        of_remittance[row.id] = key
    return checks, of_remittance


def _add_outbox(
    checks: dict[CheckKey, _Check], of_remittance: dict[int, CheckKey], buckets: list[q.Bucket]
) -> None:
    """Posted rows are posted cash; pending and in-flight ones are held. Dead rows are held
    only through their open dead-letter item (``open_item_cash``), so they are skipped here."""
    for bucket in buckets:
        check = checks[of_remittance[bucket.remittance_id]]
        if bucket.key == "posted":
            check.posted += bucket.amount
        elif bucket.key in _OUTBOX_REASONS:
            check.hold(_OUTBOX_REASONS[bucket.key], bucket.amount, bucket.count)


def _add_out_of_balance(
    rows: Sequence[q.RemittanceRow],
    of_remittance: dict[int, CheckKey],
    checks: dict[CheckKey, _Check],
    details: dict[int, Decimal],
) -> None:
    """The part of each BPR02 its own 835 detail does not account for (one count per 835)."""
    for row in rows:
        off = _signed(row) - details.get(row.id, ZERO)
        if off != ZERO:
            checks[of_remittance[row.id]].hold(OUT_OF_BALANCE, off, 1)


def _signed(row: q.RemittanceRow) -> Decimal:
    return cash_to_provider(row.payment_amount, row.credit_debit)


def _finish(check: _Check, abandoned: dict[int, list[int]]) -> CheckReconciliation:
    lines = [
        VarianceLine(reason, amount, count, tuple(ids[:IDS_PER_LINE]))
        for reason in HELD_REASONS
        if reason in check.held
        for amount, count, ids in [check.held[reason]]
        if amount != ZERO
    ]
    unexplained = check.unexplained
    if unexplained != ZERO:
        hints = [i for r in check.remittance_ids for i in abandoned.get(r, ())]
        lines.append(VarianceLine(UNEXPLAINED, unexplained, len(hints), tuple(hints)))
    return CheckReconciliation(
        trace=check.trace,
        payer=check.payer,
        payer_name=check.payer_name,
        payment_date=check.payment_date,
        bpr02=check.bpr02,
        posted=check.posted,
        held={reason: check.held.get(reason, [ZERO])[0] for reason in HELD_REASONS},
        unexplained=unexplained,
        variances=tuple(lines),
        remittance_ids=tuple(check.remittance_ids),
    )


# -- totals per payer and per day --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconciliationTotal:
    """Checks added up under ``key`` (a payer id, an ISO date, or "all")."""

    key: str
    checks: int
    bpr02: Decimal
    posted: Decimal
    held: Decimal
    unexplained: Decimal
    unbalanced_checks: int


def _totals(
    checks: Iterable[CheckReconciliation], key: Callable[[CheckReconciliation], str]
) -> list[ReconciliationTotal]:
    groups: dict[str, list[CheckReconciliation]] = defaultdict(list)
    for check in checks:
        groups[key(check)].append(check)
    return [
        ReconciliationTotal(
            key=name,
            checks=len(group),
            bpr02=sum((c.bpr02 for c in group), ZERO),
            posted=sum((c.posted for c in group), ZERO),
            held=sum((c.held_total for c in group), ZERO),
            unexplained=sum((c.unexplained for c in group), ZERO),
            unbalanced_checks=sum(not c.balanced for c in group),
        )
        for name, group in sorted(groups.items())
    ]


def totals_by_payer(checks: Iterable[CheckReconciliation]) -> list[ReconciliationTotal]:
    return _totals(checks, lambda c: c.payer)


def totals_by_day(checks: Iterable[CheckReconciliation]) -> list[ReconciliationTotal]:
    """By payment date (BPR16, else the 835's production date); "" when neither is known."""
    return _totals(checks, lambda c: c.payment_date.isoformat() if c.payment_date else "")


def grand_total(checks: Iterable[CheckReconciliation]) -> ReconciliationTotal:
    found = _totals(checks, lambda c: "all")
    return found[0] if found else ReconciliationTotal("all", 0, ZERO, ZERO, ZERO, ZERO, 0)


# -- JSON ----------------------------------------------------------------------------------------


def check_to_json(check: CheckReconciliation) -> dict[str, Any]:
    """JSON-ready (money as decimal strings); the shape is documented in docs/cli.md."""
    return {
        "trace": check.trace,
        "payer": check.payer,
        "payer_name": check.payer_name,
        "payment_date": check.payment_date.isoformat() if check.payment_date else None,
        "bpr02": str(check.bpr02),
        "posted": str(check.posted),
        "held": {reason: str(amount) for reason, amount in check.held.items()},
        "held_total": str(check.held_total),
        "unexplained": str(check.unexplained),
        "balanced": check.balanced,
        "variances": [variance_to_json(v) for v in check.variances],
        "remittance_ids": list(check.remittance_ids),
    }


def variance_to_json(line: VarianceLine) -> dict[str, Any]:
    return {
        "reason": line.reason,
        "amount": str(line.amount),
        "count": line.count,
        "work_item_ids": list(line.work_item_ids),
    }


def total_to_json(total: ReconciliationTotal, key_name: str) -> dict[str, Any]:
    return {
        key_name: total.key,
        "checks": total.checks,
        "bpr02": str(total.bpr02),
        "posted": str(total.posted),
        "held": str(total.held),
        "unexplained": str(total.unexplained),
        "unbalanced_checks": total.unbalanced_checks,
    }


def report_to_json(
    checks: Sequence[CheckReconciliation], quarantined: QuarantinedRemittances | None = None
) -> dict[str, Any]:
    """The whole ``claimsync reconcile --json`` document."""
    overall = grand_total(checks)
    return {
        "balanced": overall.unbalanced_checks == 0,
        "totals": total_to_json(overall, "scope"),
        "checks": [check_to_json(c) for c in checks],
        "by_payer": [total_to_json(t, "payer") for t in totals_by_payer(checks)],
        "by_day": [total_to_json(t, "date") for t in totals_by_day(checks)],
        "quarantined_835": quarantined_to_json(quarantined or QuarantinedRemittances()),
    }
