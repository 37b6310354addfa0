"""Matching: each claim payment (CLP) to the claim it pays, and the work items that opens.

Every claim payment gets exactly one ``payment_matches`` row, so the payments still to match are
an anti-join and a re-run opens nothing new. Payments go in chunks with one indexed ``IN`` query
per lookup, never one query per payment and never a scan of all claims; only the unmatched few
pay for the (indexed, LIMITed) candidate search.

The rules (the pure half, with the tie-breaks, is ``engine.match_scoring``):
1. CLP01 and the payer (835 REF*2U or N1*PR id against the 837 NM1*PR id, normalised). An 835
   without a payer id matches on CLP01 alone, with a warning.
2. Else CLP07 against the 277CA REF*1K, a replacement 837's REF*F8 and payments already matched
   under the same CLP07 (corrections).
3. Two or more claims equally good: ``ambiguous``; none: ``unmatched``. Both open an
   ``unmatched_remittance`` item with up to five scored candidates, never a guess.
A reversal (CLP02 22) links to the payment it undoes or is an orphan with a work item. A denial
of a matched payment opens a ``denial`` item; a 277CA rejection opens a ``rejected_claim`` item.
Open unmatched items are retried on every run and resolve themselves once their claim arrives
(e.g. a folder ingested 835s before 837s).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from claimsync_console.domain import ZERO, WorkItemState
from claimsync_console.engine import match_scoring as ms
from claimsync_console.engine import workitems as wi
from claimsync_console.engine.match_lookup import CP, Lookup
from claimsync_console.engine.match_scoring import ClaimFacts, Decision, PaymentFacts
from claimsync_console.store import queries_engine as qe
from claimsync_console.store.models import (
    ClaimStatusRow,
)
from claimsync_console.store.models_engine import ACK_STATES, ClaimAck, PaymentMatch, WorkItem
from claimsync_console.x12.findings import code_place

log = logging.getLogger(__name__)

CHUNK = 500
OPEN_VERDICTS = ("unmatched", "ambiguous", "reversal_orphan")


@dataclass(slots=True)
class MatchSummary:
    matched: int = 0
    unmatched: int = 0
    ambiguous: int = 0
    reversals_linked: int = 0
    reversal_orphans: int = 0
    with_warnings: int = 0
    denials_opened: int = 0
    acks: int = 0
    rejections_opened: int = 0
    resolved_on_retry: int = 0

    def count(self, decision: Decision) -> None:
        name = {"reversal_linked": "reversals_linked", "reversal_orphan": "reversal_orphans"}
        attribute = name.get(decision.status, decision.status)
        setattr(self, attribute, getattr(self, attribute) + 1)
        self.with_warnings += bool(decision.warnings)


def match_payments(
    session: Session,
    *,
    file_ids: Sequence[int] | None = None,
    remittance_ids: Sequence[int] | None = None,
    now: datetime | None = None,
    retry_open: bool = True,
) -> MatchSummary:
    """Match every claim payment that has no verdict yet (only those of ``file_ids`` /
    ``remittance_ids`` when given), apply new 277CA statuses, and retry open unmatched items.
    Runs in the caller's transaction and never commits."""
    at = now or datetime.now(UTC)
    summary = MatchSummary()
    lookup = Lookup(session)
    _apply_acks(session, lookup, file_ids, at, summary)
    for reversals in (False, True):  # originals first, so a reversal finds their claim
        after = 0
        while batch := lookup.pending(file_ids, remittance_ids, reversals, after):
            after = batch[-1].claim_payment_id
            _store(session, lookup, batch, _decide(lookup, batch), at, summary)
    if retry_open:
        _retry(session, lookup, at, summary)
    return summary


def open_payment_followups(
    session: Session, claim_payment_id: int, claim_id: int, *, now: datetime
) -> bool:
    """After a payment is matched by hand (triage remap): open its denial item if it is a
    denial. True when an item was opened."""
    ref = wi.load_payment_ref(session, claim_payment_id)
    codes = Lookup(session).adjustment_codes([claim_payment_id]).get(claim_payment_id, [])
    denial = ms.denial_codes(ref.status_code, ref.paid, codes)
    if denial is None:
        return False
    return wi.open_denial(session, ref, claim_id=claim_id, carcs=denial, now=now).created


# -- deciding ----------------------------------------------------------------------------------


def _decide_one(
    lookup: Lookup,
    payment: PaymentFacts,
    by_pcn: dict[str, list[ClaimFacts]],
    by_ccn: dict[str, set[ms.FamilyKey]],
    candidates: bool,
) -> Decision:
    """One payment's verdict. A bug of ours on one payment's data (a date at the end of the
    calendar once was one) must not stop every other payment's matching, run after run: that
    payment goes to the unmatched queue, its cash held there, for a person to match. Database
    errors still end the run: the transaction is gone."""
    try:
        decision = ms.decide_payment(payment, by_pcn, by_ccn)
        if decision.status == "unmatched" and candidates:
            pool = lookup.candidate_pool(payment)
            decision.candidates = ms.top_candidates(ms.score_candidate(payment, c) for c in pool)
    except SQLAlchemyError:
        raise
    except Exception as error:
        log.error(
            "matching claim payment %s failed (%s); sent to the unmatched queue",
            payment.claim_payment_id, code_place(error),
        )  # fmt: skip
        reason = f"automatic matching failed ({type(error).__name__}): match it by hand"
        return Decision("unmatched", reason=reason)
    return decision


def _decide(
    lookup: Lookup, batch: Sequence[PaymentFacts], *, candidates: bool = True
) -> dict[int, Decision]:
    decisions: dict[int, Decision] = {}
    payments = [p for p in batch if not p.is_reversal]
    by_pcn = lookup.claims_by_pcn({p.patient_control_number for p in payments})
    need = {
        p.payer_claim_control_number
        for p in payments
        if p.payer_claim_control_number
        and not any(
            not p.payer_id or c.payer_id == p.payer_id
            for c in by_pcn.get(p.patient_control_number, ())
        )
    }
    by_ccn = lookup.families_by_ccn(need)
    more = {pcn for keys in by_ccn.values() for pcn, _ in keys} - by_pcn.keys()
    by_pcn.update(lookup.claims_by_pcn(more))
    for p in payments:
        decisions[p.claim_payment_id] = _decide_one(lookup, p, by_pcn, by_ccn, candidates)
    reversals = [p for p in batch if p.is_reversal]
    originals = lookup.originals({r.payer_claim_control_number for r in reversals})
    undone = lookup.reversed_ids([o.claim_payment_id for o in originals])
    for r in reversals:
        decision = ms.decide_reversal(r, originals, undone)
        if decision.reversed_payment_id is not None:
            undone.add(decision.reversed_payment_id)
        decisions[r.claim_payment_id] = decision
    return decisions


def _followups(
    session: Session,
    lookup: Lookup,
    settled: Sequence[tuple[PaymentFacts, Decision]],
    at: datetime,
    summary: MatchSummary,
) -> None:
    """Warnings that need the store (a claim the 277CA rejected) and denial items."""
    matched = [(p, d) for p, d in settled if d.status == "matched" and d.claim_id is not None]
    acks = qe.claim_ack_states(session, {d.claim_id for _, d in matched if d.claim_id})
    maybe_denied = [p.claim_payment_id for p, _ in matched if p.status_code == "4" or not p.paid]
    codes = lookup.adjustment_codes(maybe_denied)
    denials: list[dict[str, Any]] = []
    for p, d in matched:
        if acks.get(d.claim_id or 0) == "rejected":
            d.warnings.append({"code": "claim-rejected", "message": "the 277CA rejected it"})
        denial = ms.denial_codes(p.status_code, p.paid, codes.get(p.claim_payment_id, []))
        if denial is not None:
            denials.append(wi.denial_item(p.ref(), claim_id=d.claim_id, carcs=denial))
    opened = qe.open_work_items(session, denials, now=at)
    summary.denials_opened += sum(o.created for o in opened)


def _store(
    session: Session,
    lookup: Lookup,
    batch: Sequence[PaymentFacts],
    decisions: dict[int, Decision],
    at: datetime,
    summary: MatchSummary,
) -> None:
    settled = [(p, decisions[p.claim_payment_id]) for p in batch]
    _followups(session, lookup, settled, at, summary)
    waiting = [(p, d) for p, d in settled if d.status in OPEN_VERDICTS]
    items = [
        wi.unmatched_item(p.ref(), reason=d.reason, candidates=d.candidates) for p, d in waiting
    ]
    item_ids = {
        p.claim_payment_id: opened.id
        for (p, _), opened in zip(waiting, qe.open_work_items(session, items, now=at), strict=True)
    }
    rows: list[dict[str, Any]] = []
    for p, d in settled:
        rows.append({**_verdict(d, at), "claim_payment_id": p.claim_payment_id,
                     "work_item_id": item_ids.get(p.claim_payment_id)})  # fmt: skip
        summary.count(d)
    session.execute(insert(cast(Table, PaymentMatch.__table__)), rows)


def _verdict(d: Decision, at: datetime) -> dict[str, Any]:
    return {
        "claim_id": d.claim_id,
        "status": d.status,
        "method": d.method,
        "score": d.score,
        "reversed_payment_id": d.reversed_payment_id,
        "warnings": d.warnings,
        "matched_at": at,
    }


def _retry(session: Session, lookup: Lookup, at: datetime, summary: MatchSummary) -> None:
    """Re-decide payments whose unmatched item is still untouched; resolve the ones that match
    now. An item an analyst has taken (in progress) or closed is left to the analyst. Then
    reversals linked before their original had a claim take the original's claim."""
    _retry_unmatched(session, lookup, at, summary)
    original = aliased(PaymentMatch)
    claim_of_original = (
        select(original.claim_id)
        .where(original.claim_payment_id == PaymentMatch.reversed_payment_id)
        .scalar_subquery()
    )
    session.execute(
        update(PaymentMatch)
        .where(
            PaymentMatch.status == "reversal_linked",
            PaymentMatch.claim_id.is_(None),
            PaymentMatch.reversed_payment_id.is_not(None),
        )
        .values(claim_id=claim_of_original)
        .execution_options(synchronize_session=False)
    )


def _retry_unmatched(session: Session, lookup: Lookup, at: datetime, summary: MatchSummary) -> None:
    waiting = session.execute(
        select(PaymentMatch.claim_payment_id, WorkItem.id, WorkItem.version, WorkItem.details)
        .join(WorkItem, WorkItem.id == PaymentMatch.work_item_id)
        .where(PaymentMatch.status.in_(OPEN_VERDICTS), WorkItem.state == WorkItemState.OPEN.value)
        .order_by(PaymentMatch.claim_payment_id)
    ).all()
    for start in range(0, len(waiting), CHUNK):
        rows = {row[0]: row for row in waiting[start : start + CHUNK]}
        batch = lookup.payments(CP.c.id.in_(rows))
        decisions = _decide(lookup, batch, candidates=False)
        settled = []
        for p in batch:
            d = decisions[p.claim_payment_id]
            if d.status in OPEN_VERDICTS:
                continue
            _, item_id, version, details = rows[p.claim_payment_id]
            resolution = {"by": "matcher", "claim_id": d.claim_id, "at": at.isoformat()}
            try:
                qe.update_work_item(
                    session, item_id, expected_version=version, now=at,
                    state=WorkItemState.RESOLVED.value, resolved_at=at,
                    details={**(details or {}), "resolution": resolution},
                )  # fmt: skip
            except qe.StaleWorkItemError:
                continue
            settled.append((p, d))
        _followups(session, lookup, settled, at, summary)
        for p, d in settled:
            session.execute(
                update(PaymentMatch)
                .where(PaymentMatch.claim_payment_id == p.claim_payment_id)
                .values(**_verdict(d, at))
            )
        summary.resolved_on_retry += len(settled)


# -- 277CA acknowledgements --------------------------------------------------------------------


def _apply_acks(
    session: Session,
    lookup: Lookup,
    file_ids: Sequence[int] | None,
    at: datetime,
    summary: MatchSummary,
) -> None:
    """One ``claim_acks`` row per new 277CA status; a rejection marks the claim rejected (its
    newest ack) and opens a ``rejected_claim`` item."""
    after = 0
    while True:
        query = _status_select().outerjoin(ClaimAck, ClaimAck.claim_status_id == ClaimStatusRow.id)
        query = query.where(ClaimAck.id.is_(None), ClaimStatusRow.id > after)
        if file_ids is not None:
            query = query.where(ClaimStatusRow.source_file_id.in_(file_ids))
        statuses = session.execute(query.order_by(ClaimStatusRow.id).limit(CHUNK)).all()
        if not statuses:
            break
        after = statuses[-1].id
        by_pcn = lookup.claims_by_pcn(
            {s.patient_control_number for s in statuses}, with_people=False
        )
        claims = [_acked_claim(s, by_pcn) for s in statuses]
        rejected = [
            (s, c) for s, c in zip(statuses, claims, strict=True) if _state(s) == "rejected"
        ]
        opened = qe.open_work_items(session, [_rejection(s, c) for s, c in rejected], now=at)
        item_ids = {s.id: o.id for (s, _), o in zip(rejected, opened, strict=True)}
        summary.rejections_opened += sum(o.created for o in opened)
        rows = [
            {"claim_status_id": s.id, "claim_id": c.claim_id if c else None, "state": _state(s),
             "work_item_id": item_ids.get(s.id), "applied_at": at}
            for s, c in zip(statuses, claims, strict=True)
        ]  # fmt: skip
        session.execute(insert(cast(Table, ClaimAck.__table__)), rows)
        summary.acks += len(rows)
    _retry_acks(session, lookup, at)


def _status_select() -> Any:
    return select(
        ClaimStatusRow.id,
        ClaimStatusRow.patient_control_number,
        ClaimStatusRow.payer_claim_control_number,
        ClaimStatusRow.payer_identifier,
        ClaimStatusRow.payer_name,
        ClaimStatusRow.status,
        ClaimStatusRow.codes,
        ClaimStatusRow.charge,
    )


def _acked_claim(status: Any, by_pcn: dict[str, list[ClaimFacts]]) -> ClaimFacts | None:
    payer = wi.normalise_payer_id(status.payer_identifier)
    versions = [
        c for c in by_pcn.get(status.patient_control_number, ()) if not payer or c.payer_id == payer
    ]
    return ms.pick_version(versions, status.payer_claim_control_number)[0] if versions else None


def _state(status: Any) -> str:
    return str(status.status) if status.status in ACK_STATES else "other"


def _rejection(status: Any, claim: ClaimFacts | None) -> dict[str, Any]:
    return wi.rejected_item(
        claim_status_id=status.id,
        claim_id=claim.claim_id if claim else None,
        patient_control_number=status.patient_control_number,
        payer_id=status.payer_identifier,
        payer_name=status.payer_name,
        amount=claim.billed_amount if claim else (status.charge or ZERO),
        codes=status.codes or [],
    )


def _retry_acks(session: Session, lookup: Lookup, at: datetime) -> None:
    """Statuses that arrived before their 837 (a folder loads 277ca/ before 837/)."""
    orphans = session.execute(
        _status_select()
        .add_columns(ClaimAck.id.label("ack_id"), ClaimAck.work_item_id)
        .join(ClaimAck, ClaimAck.claim_status_id == ClaimStatusRow.id)
        .where(ClaimAck.claim_id.is_(None))
    ).all()
    by_pcn = lookup.claims_by_pcn({s.patient_control_number for s in orphans}, with_people=False)
    for status in orphans:
        claim = _acked_claim(status, by_pcn)
        if claim is None:
            continue
        session.execute(
            update(ClaimAck).where(ClaimAck.id == status.ack_id).values(claim_id=claim.claim_id)
        )
        if status.work_item_id is not None:
            session.execute(
                update(WorkItem)
                .where(WorkItem.id == status.work_item_id)
                .values(claim_id=claim.claim_id, version=WorkItem.version + 1, updated_at=at)
            )
