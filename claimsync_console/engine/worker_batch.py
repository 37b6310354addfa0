"""Batched posting (#6): one ERP call and one outcome transaction for a whole claimed batch.

Used when the adapter declares ``supports_batch``. Posting row by row costs three store
transactions per row (admit, record attempt and fate, breaker), which capped the engine far
below what the ERP takes; here the same three transactions carry a whole batch.

The crash-safety argument of ``engine.worker`` is unchanged, only its unit grows from a row to
a batch: the rows are leased in one transaction, posted by one ``post_each`` call outside any
transaction, and every row's fate, its attempt and the breaker are committed in ONE
transaction. A kill -9 before that commit leaves every row of the batch leased; whoever takes
them over posts them again, and the ERP answers ``created=False`` for each key it already holds.

Per-row fates still differ inside a batch: ``post_each`` gives each entry its own result or
error, so one entry the ERP refuses for good is dead-lettered alone while the others post. A
failure of the whole call (ERP down, throttled) is every row's transient outcome: all of them
back off, and the breaker counts it as ONE failure, because it was one call.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from claimsync_console.domain.journal import JournalEntry
from claimsync_console.engine import breaker
from claimsync_console.engine.outbox import EntryFormatError, entry_from_json
from claimsync_console.erp.base import ErpError, PostingResult
from claimsync_console.store import queries_outbox as q

if TYPE_CHECKING:
    from claimsync_console.engine.worker_rows import DrainReport, Outcome, Worker


def post_together(worker: Worker, batch: list[q.ClaimedPosting], report: DrainReport) -> bool:
    """Post and record a claimed batch; False when cut short (stop asked, circuit opened)."""
    for claimed in batch:
        worker.emit("claimed", claimed.id)
    if worker.stopped():
        worker.release([c.id for c in batch], report)
        return False
    outcomes = call_erp(worker, batch)
    for claimed in batch:
        worker.emit("called", claimed.id)
    with worker.sessions.begin() as session:
        state = record_all(worker, session, batch, outcomes, report)
    for claimed in batch:
        worker.emit("recorded", claimed.id)
    if state == breaker.OPEN:
        report.breaker_blocked = True
        report.breaker_retry_at = worker.now_fn() + worker.breaker_policy.cool_down
        return False
    return True


def call_erp(worker: Worker, batch: list[q.ClaimedPosting]) -> dict[int, Outcome]:
    """Each row's outcome: unreadable rows never reach the ERP, the rest go in one call."""
    from claimsync_console.engine.worker_rows import Outcome

    outcomes: dict[int, Outcome] = {}
    readable: list[tuple[q.ClaimedPosting, JournalEntry]] = []
    for claimed in batch:
        try:
            readable.append((claimed, entry_from_json(claimed.entry)))
        except EntryFormatError as exc:
            outcomes[claimed.id] = Outcome(error=f"[unreadable_entry] {exc}")
    if not readable:
        return outcomes
    for claimed, _entry in readable:
        worker.emit("calling", claimed.id)
    started = time.perf_counter()
    answers: list[PostingResult | ErpError] | Exception
    try:
        answers = worker.adapter.post_each([entry for _claimed, entry in readable])
    except Exception as exc:  # ErpError for the whole batch; anything else: an adapter bug
        answers = exc
    latency = (time.perf_counter() - started) * 1000.0
    for index, (claimed, _entry) in enumerate(readable):
        answer = answers if isinstance(answers, Exception) else answers[index]
        outcomes[claimed.id] = outcome_of(answer, latency)
    return outcomes


def outcome_of(answer: PostingResult | Exception, latency_ms: float) -> Outcome:
    """An ERP answer as the worker records it; an unexpected exception is assumed transient,
    as on the row-by-row path."""
    from claimsync_console.engine.worker_rows import Outcome

    if isinstance(answer, PostingResult):
        return Outcome(result=answer, latency_ms=latency_ms)
    if isinstance(answer, ErpError):
        return Outcome(
            error=f"[{answer.code}] {answer.message}",
            retryable=answer.retryable,
            retry_after=answer.retry_after,
            latency_ms=latency_ms,
        )
    return Outcome(
        error=f"[unexpected] {type(answer).__name__}: {answer}",
        retryable=True,
        latency_ms=latency_ms,
    )


def record_all(
    worker: Worker,
    session: Session,
    batch: list[q.ClaimedPosting],
    outcomes: dict[int, Outcome],
    report: DrainReport,
) -> str:
    """Every row's attempt and fate and the breaker, in the caller's single transaction."""
    now = worker.now_fn()
    attempts = q.record_attempts(
        session,
        [
            q.AttemptRecord(
                claimed.id,
                outcomes[claimed.id].kind,
                outcomes[claimed.id].error,
                _rounded(outcomes[claimed.id].latency_ms),
            )
            for claimed in batch
        ],
        now=now,
    )
    fresh = {  # posted by this call and not (by a worker that took the lease over) before
        claimed.id: result.erp_reference
        for claimed in batch
        if (result := outcomes[claimed.id].result) is not None
        and attempts[claimed.id][1] != q.POSTED
    }
    q.mark_posted_many(session, fresh, now=now)
    for claimed in batch:
        outcome = outcomes[claimed.id]
        if outcome.result is None:
            worker.record_failed(session, claimed, outcome, attempts[claimed.id][0], now, report)
            continue
        if claimed.id in fresh:
            report.posted += 1
            report.posted_amount += claimed.amount
        if not outcome.result.created:
            report.duplicates += 1
    return worker.record_breaker(session, list(outcomes.values()), now)


def _rounded(latency_ms: float | None) -> int | None:
    return None if latency_ms is None else round(latency_ms)
