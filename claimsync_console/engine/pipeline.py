"""The posting pipeline: matched claim payments and checks' PLBs become outbox rows or work items.

Each source posts once: a claim payment whose match is ``matched`` or ``reversal_linked``, and
each check's provider-level adjustments. Its outcome, in the caller's transaction:

* an outbox row (kind ``payment``, ``reversal`` for CLP02 = 22, or ``plb``) keyed by
  ``engine.keys``: the posting and the state that caused it commit together;
* a ``mapping_error`` item naming each missing rule, or with ``details.reason`` "claim out of
  balance" when CLP03 − CLP04 ≠ Σ CAS (no rule can fix that; a person must);
* an ``approval`` item holding the serialised entry when an amount is over the engine's tier
  (``enqueue_approved`` queues it once a supervisor approves);
* nothing, for an entry with no lines. Whole-claim denials (CLP02 = 4, nothing paid) and the
  reversals of such denials are not even selected: they never post, and matching opened the
  ``denial`` item.

A source is pending while it has no outbox row and no mapping_error or approval item *in any
state*: an item an analyst closed is their decision, and ``reprocess`` is the way back. So a
second run selects nothing new (and the unique keys would stop a duplicate anyway). Items
record ``details.cash_amount``, the cash they hold back from the check, so reconciliation finds
BPR02 = Σ outbox ``cash_amount`` + Σ held cash. Sources go in chunks: one anti-join query
(``store.hydrate.pending_*``), then batched hydration, never a query per payment.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import ZERO, WorkItemKind, WorkItemState
from claimsync_console.engine.matching import MatchSummary, match_payments
from claimsync_console.engine.pipeline_sources import (
    OUT_OF_BALANCE,
    Built,
    Headers,
    Source,
    enqueue_approved,
    entry_date_for,
    payment_source,
    plb_source,
    problem,
    route,
)
from claimsync_console.engine.posting import ClaimOutOfBalanceError, MissingRules, PostingPlan
from claimsync_console.engine.rules import RulesBook
from claimsync_console.store import hydrate
from claimsync_console.store import queries_engine as qe

__all__ = [
    "CHUNK",
    "OUT_OF_BALANCE",
    "Built",
    "Headers",
    "PostSummary",
    "ProcessSummary",
    "ReprocessSummary",
    "Source",
    "enqueue_approved",
    "entry_date_for",
    "payment_source",
    "plb_source",
    "post_matched",
    "post_source",
    "process_all",
    "reprocess",
]

log = logging.getLogger(__name__)

CHUNK = 500


@dataclass(slots=True)
class PostSummary:
    considered: int = 0
    enqueued: int = 0  # payment and reversal rows
    reversals: int = 0
    plb_enqueued: int = 0
    mapping_errors: int = 0
    out_of_balance: int = 0
    approvals: int = 0
    nothing_to_post: int = 0
    cash_enqueued: Decimal = ZERO


@dataclass(slots=True)
class ReprocessSummary:
    considered: int = 0
    resolved: int = 0
    enqueued: int = 0
    approvals: int = 0
    still_missing: int = 0
    out_of_balance: int = 0
    conflicts: int = 0


@dataclass(slots=True)
class ProcessSummary:
    matching: MatchSummary
    posting: PostSummary
    reprocess: ReprocessSummary = field(default_factory=ReprocessSummary)


# -- posting what is pending -------------------------------------------------------------------


def post_matched(
    session: Session, rules: RulesBook, *, now: datetime, requested_by: str = "engine"
) -> PostSummary:
    """Post every pending matched payment, then every pending check's PLB. Never commits."""
    summary, headers = PostSummary(), Headers()
    after = 0
    while rows := hydrate.pending_claim_payments(session, after, CHUNK):
        after = rows[-1][0]
        payments = hydrate.load_claim_payments(session, [r[0] for r in rows])
        _need_headers(session, headers, [r[1] for r in rows])
        for cp_id, rem_id in rows:
            source = payment_source(cp_id, rem_id, payments[cp_id], headers[rem_id])
            post_source(session, source, rules, now=now, requested_by=requested_by, summary=summary)
    after = 0
    while remittance_ids := hydrate.pending_plb_remittances(session, after, CHUNK):
        after = remittance_ids[-1]
        _need_headers(session, headers, remittance_ids)
        plbs = hydrate.load_provider_adjustments_for(session, remittance_ids)
        for rem_id in remittance_ids:
            source = plb_source(rem_id, plbs[rem_id], headers[rem_id])
            post_source(session, source, rules, now=now, requested_by=requested_by, summary=summary)
    log.info("posting: %s", summary)
    return summary


def post_source(
    session: Session,
    source: Source,
    rules: RulesBook,
    *,
    now: datetime,
    requested_by: str,
    summary: PostSummary | None = None,
) -> PostSummary:
    """Post one source exactly as a run would: an outbox row, an approval item or a mapping
    error. Triage's remap calls it so that a hand-matched payment ends up where an automatic
    match would. Adds to ``summary`` (a new one when None) and returns it. Never commits."""
    summary = summary if summary is not None else PostSummary()
    summary.considered += 1
    result = source.build(rules, now)
    if not isinstance(result, PostingPlan):
        summary.mapping_errors += isinstance(result, MissingRules)
        summary.out_of_balance += isinstance(result, ClaimOutOfBalanceError)
        qe.open_work_item(
            session,
            kind=WorkItemKind.MAPPING_ERROR,
            source_key=source.source_key,
            amount=source.cash,
            now=now,
            reopen=True,
            **problem(source, result, rules.digest),
            **source.item_fields(),
        )
        return summary
    outcome, _ = route(session, source, result, rules, now=now, requested_by=requested_by)
    summary.nothing_to_post += outcome == "nothing"
    summary.approvals += outcome == "approval"
    if outcome == "enqueued":
        summary.cash_enqueued += result.cash
        summary.plb_enqueued += source.outbox_kind == "plb"
        summary.enqueued += source.outbox_kind != "plb"
        summary.reversals += source.outbox_kind == "reversal"
    return summary


def _need_headers(session: Session, headers: Headers, remittance_ids: Sequence[int]) -> None:
    missing = [r for r in remittance_ids if r not in headers]
    if missing:
        headers.update(hydrate.load_remittance_headers(session, missing))


# -- reprocessing mapping errors ---------------------------------------------------------------


def reprocess(
    session: Session,
    rules: RulesBook,
    *,
    now: datetime,
    work_item_ids: Sequence[int] | None = None,
    requested_by: str = "engine",
) -> ReprocessSummary:
    """Retry mapping_error items with ``rules`` (the remap after a rules fix). Those that now
    build are resolved and their posting queued (or handed to an approval item).

    With ``work_item_ids``, those items (open or in progress) are retried whatever happened
    before. Without, every *open* one is, except those last tried with these very rules (the
    same rules and the same rows give the same answer). Never commits."""
    summary, headers = ReprocessSummary(), Headers()
    states = qe.OPEN_STATES if work_item_ids is not None else (WorkItemState.OPEN.value,)
    for items in hydrate.mapping_error_chunks(session, states, work_item_ids, CHUNK):
        if work_item_ids is None and rules.digest:
            items = [i for i in items if (i.details or {}).get("rules_digest") != rules.digest]
        sources = _item_sources(session, items, headers)
        for item in items:
            if item.id in sources:
                summary.considered += 1
                _reprocess_one(session, item, sources[item.id], rules, now, requested_by, summary)
    log.info("reprocess: %s", summary)
    return summary


def _item_sources(session: Session, items: Sequence[Any], headers: Headers) -> dict[int, Source]:
    """What each item holds back, rebuilt from the rows (an item naming neither is skipped)."""
    for_payment = [i for i in items if i.claim_payment_id is not None]
    for_plb = [
        i
        for i in items
        if i.claim_payment_id is None and i.remittance_id and i.source_key.startswith("plb:")
    ]
    payments = hydrate.load_claim_payments(session, [i.claim_payment_id for i in for_payment])
    plbs = hydrate.load_provider_adjustments_for(session, [i.remittance_id for i in for_plb])
    _need_headers(session, headers, [i.remittance_id for i in (*for_payment, *for_plb)])
    sources: dict[int, Source] = {}
    for i in for_payment:
        if i.claim_payment_id in payments and i.remittance_id in headers:
            payment = payments[i.claim_payment_id]
            header = headers[i.remittance_id]
            sources[i.id] = payment_source(i.claim_payment_id, i.remittance_id, payment, header)
    for i in for_plb:
        if i.remittance_id in plbs and i.remittance_id in headers:
            sources[i.id] = plb_source(
                i.remittance_id, plbs[i.remittance_id], headers[i.remittance_id]
            )
    return sources


def _reprocess_one(
    session: Session,
    item: Any,
    source: Source,
    rules: RulesBook,
    now: datetime,
    requested_by: str,
    summary: ReprocessSummary,
) -> None:
    """Resolve first (the version check guards against a concurrent analyst), then post, then
    record where the posting went."""
    result, details = source.build(rules, now), dict(item.details or {})
    resolution: dict[str, Any] = {"by": "reprocess", "at": now.isoformat()}
    changes: dict[str, Any] = {"state": WorkItemState.RESOLVED.value, "resolved_at": now}
    if not isinstance(result, PostingPlan):
        summary.out_of_balance += isinstance(result, ClaimOutOfBalanceError)
        summary.still_missing += isinstance(result, MissingRules)
        changes = problem(source, result, rules.digest)
        changes["details"] = {**details, **changes["details"]}
    else:
        changes["details"] = {**details, "rules_digest": rules.digest, "resolution": resolution}
    try:
        version = qe.update_work_item(
            session, item.id, expected_version=item.version, now=now, **changes
        )
    except qe.StaleWorkItemError:
        summary.conflicts += 1  # someone changed it meanwhile: their decision stands
        return
    if not isinstance(result, PostingPlan):
        return
    summary.resolved += 1
    outcome, target = route(
        session, source, result, rules, now=now, requested_by=requested_by, work_item_id=item.id
    )
    summary.enqueued += outcome == "enqueued"
    summary.approvals += outcome == "approval"
    resolution.update(outcome=outcome, target_id=target)
    linked = {"outbox_id": target} if outcome == "enqueued" else {}
    qe.update_work_item(
        session, item.id, expected_version=version, now=now, details=changes["details"], **linked
    )


# -- the whole run -----------------------------------------------------------------------------


def process_all(
    session_factory: sessionmaker[Session], rules: RulesBook, *, now: datetime | None = None
) -> ProcessSummary:
    """Match, retry the mapping errors that changed rules may fix, and post, in one
    transaction: what ``claimsync sync`` and the demo run after ingest. The outbox worker
    (``engine.worker.drain``) delivers the postings separately."""
    at = now or datetime.now(UTC)
    with session_factory() as session, session.begin():
        matching = match_payments(session, now=at)
        fixed = reprocess(session, rules, now=at)
        posting = post_matched(session, rules, now=at)
    return ProcessSummary(matching, posting, fixed)
