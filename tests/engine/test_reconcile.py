"""Reconciliation on the committed sample data, on SQLite and PostgreSQL.

Expectations come from outside the code under test: each check's BPR02, payer and date from
``manifest.json``; the cash of the planted problems (unknown claim numbers, unmapped CARCs)
straight from the 835 files read with the X12 reader; posted cash from the embedded ledger's
own cash-clearing balance. The engine runs for real: ingest, ``process_all`` with the sample
rules, the outbox worker into a real ``LedgerAdapter``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import ClaimPayment, RemittanceHeader
from claimsync_console.engine.breaker import BreakerPolicy
from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.engine.pipeline import process_all
from claimsync_console.engine.reconcile import (
    HELD_REASONS,
    CheckReconciliation,
    QuarantinedRemittances,
    grand_total,
    quarantined_line,
    quarantined_remittances,
    reconcile,
    totals_by_day,
    totals_by_payer,
)
from claimsync_console.engine.rules import load_rules, sample_rules_path
from claimsync_console.engine.runtime import open_adapter
from claimsync_console.engine.samples import sample_files
from claimsync_console.engine.worker import drain
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.store import queries_outbox
from claimsync_console.store.models import ClaimPaymentRow, Remittance
from claimsync_console.store.models_engine import OutboxEntry, WorkItem
from claimsync_console.store.queries_engine import update_work_item
from claimsync_console.x12.document import read_document

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
MANIFEST = json.loads((SAMPLE_DATA / "manifest.json").read_text())
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
D = Decimal
ZERO = D("0.00")
UNMAPPED = {"CO-B7", "OA-121"}  # the sample rules leave these out on purpose
CASH_CLEARING = "1010"  # [defaults] cash_clearing of the sample rules; no payer overrides it
DEAD_LETTER_FILES = ("837P_RPG", "835_BCB_RPG_0002")  # a WO recoupment (PLB to account 1250)
ORPHAN_FILES = ("837P_RPG", "835_UHC_RPG_0002")  # a reversal whose original is not loaded


# --------------------------------------------------------------------------- helpers


def sample_subset(tmp_path: Path, only: tuple[str, ...]) -> Path:
    """A copy of sample_data whose manifest lists only the files matching ``only``."""
    folder = tmp_path / "samples"
    shutil.copytree(SAMPLE_DATA, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if any(o in f["path"] for o in only)]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def ingest(sessions: sessionmaker[Session], folder: Path) -> None:
    results = ingest_paths(sessions, sample_files(folder), now=NOW)
    assert results and {r.status for r in results} == {"loaded"}


def run_engine(sessions: sessionmaker[Session], folder: Path) -> None:
    ingest(sessions, folder)
    process_all(sessions, load_rules(sample_rules_path()), now=NOW)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[LedgerAdapter]:
    """The real embedded ledger, as the CLI opens it. Its file goes on tmpfs when there is
    one: these tests check amounts, and the ledger's fsync per entry is most of their time."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path
    adapter = open_adapter("ledger", folder / "ledger.sqlite", today=NOW.date())
    assert isinstance(adapter, LedgerAdapter)
    yield adapter
    if folder != tmp_path:
        shutil.rmtree(folder, ignore_errors=True)


def deliver(sessions: sessionmaker[Session], ledger: LedgerAdapter, **options: Any) -> Any:
    return drain(sessions, ledger, worker_id="test", batch_size=100, now_fn=lambda: NOW, **options)


def by_trace(checks: list[CheckReconciliation]) -> dict[str, CheckReconciliation]:
    assert len({c.trace for c in checks}) == len(checks)
    return {c.trace: c for c in checks}


def nonzero(held: dict[str, Decimal]) -> dict[str, Decimal]:
    return {reason: amount for reason, amount in held.items() if amount}


def assert_identity(checks: list[CheckReconciliation]) -> None:
    """Every check adds up, and nothing is left unexplained."""
    for check in checks:
        assert set(check.held) == set(HELD_REASONS)
        assert check.bpr02 == check.posted + check.held_total + check.unexplained
        assert check.unexplained == ZERO and check.balanced, check
        assert sum((v.amount for v in check.variances), ZERO) == check.held_total


def file_problems(folder: Path) -> dict[str, dict[str, Decimal]]:
    """trace -> {"unmatched": Σ CLP04 of unknown claim numbers, "mapping error": Σ CLP04 of
    known claims carrying an unmapped CARC}, read from the 835 files themselves."""
    unknown = set(MANIFEST["problem_pcns"]["unknown_pcn"])
    found: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for path in sorted((folder / "835").glob("*.x12")):
        trace = ""
        for item in read_document(path.read_bytes(), path.name):
            if isinstance(item, RemittanceHeader):
                trace = item.trace_number
            elif isinstance(item, ClaimPayment):
                codes = {f"{a.group}-{a.reason_code}" for a in item.all_adjustments}
                if item.patient_control_number in unknown:
                    found[trace]["unmatched"] += item.paid
                elif codes & UNMAPPED:
                    found[trace]["mapping error"] += item.paid
    return found


def outbox_cash_by_trace(session: Session) -> dict[str, Decimal]:
    rows = session.execute(
        select(OutboxEntry.trace_number, func.sum(OutboxEntry.cash_amount)).group_by(
            OutboxEntry.trace_number
        )
    )
    return {trace: total for trace, total in rows}


def open_items(session: Session, kind: str) -> list[WorkItem]:
    return list(
        session.scalars(
            select(WorkItem)
            .where(WorkItem.kind == kind, WorkItem.state.in_(("open", "in_progress")))
            .order_by(WorkItem.id)
        )
    )


def variance(check: CheckReconciliation, reason: str) -> Any:
    (line,) = [v for v in check.variances if v.reason == reason]
    return line


# --------------------------------------------------------------------------- the whole sample


def test_sample_data_reconciles_to_the_cent_at_every_step(
    db_sessions: sessionmaker[Session], ledger: LedgerAdapter
) -> None:
    manifest_checks = {c["trace_number"]: c for c in MANIFEST["checks"]}
    ingest(db_sessions, SAMPLE_DATA)

    # before the engine runs, every check's whole deposit is "not processed"
    with db_sessions() as session:
        checks = by_trace(reconcile(session))
    assert checks.keys() == manifest_checks.keys() and len(checks) == 42
    assert_identity(list(checks.values()))
    for trace, check in checks.items():
        expected = manifest_checks[trace]
        assert check.bpr02 == D(expected["payment_amount"])
        assert check.payer == expected["payer_id"]
        assert check.payment_date == date.fromisoformat(expected["payment_date"])
        assert nonzero(check.held) == {"not processed": check.bpr02}
        assert check.posted == ZERO

    # matched and routed: the planted problems hold exactly their CLP04, the rest awaits posting
    process_all(db_sessions, load_rules(sample_rules_path()), now=NOW)
    problems = file_problems(SAMPLE_DATA)
    with db_sessions() as session:
        checks = by_trace(reconcile(session))
        queued = outbox_cash_by_trace(session)
        approvals = open_items(session, "approval")
        approval_cash: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for item in approvals:  # CLP04 of the payment each approval holds back
            paid = session.get(ClaimPaymentRow, item.claim_payment_id)
            assert paid is not None
            approval_cash[item.trace_number] += paid.paid
        unmatched = open_items(session, "unmatched_remittance")
        mapping = open_items(session, "mapping_error")
    assert_identity(list(checks.values()))
    assert approvals and len(unmatched) == len(MANIFEST["problem_pcns"]["unknown_pcn"])
    assert mapping
    for trace, check in checks.items():
        expected = {
            "unmatched": problems[trace]["unmatched"],
            "mapping error": problems[trace]["mapping error"],
            "awaiting approval": approval_cash[trace],
            "awaiting posting": queued.get(trace, ZERO),
        }
        assert nonzero(check.held) == nonzero(expected), trace
        for reason, items in (
            ("unmatched", unmatched),
            ("mapping error", mapping),
            ("awaiting approval", approvals),
        ):
            ids = tuple(i.id for i in items if i.trace_number == trace)
            lines = [v for v in check.variances if v.reason == reason]
            if check.held[reason]:
                assert lines[0].work_item_ids == ids and lines[0].count == len(ids)
            else:
                assert not lines
    assert sum(c.held["unmatched"] for c in checks.values()) == sum(
        (p["unmatched"] for p in problems.values()), ZERO
    )

    # delivered: posted cash is the ledger's cash clearing, to the cent
    report = deliver(db_sessions, ledger, once=True)
    with db_sessions() as session:
        rows = session.scalar(select(func.count(OutboxEntry.id)))
    assert report.dead == 0 and report.posted == rows and rows > 250
    with db_sessions() as session:
        after = reconcile(session)
    assert_identity(after)
    posted = sum((c.posted for c in after), ZERO)
    assert posted == ledger.account_balance(CASH_CLEARING) == sum(queued.values(), ZERO)
    for check in after:
        assert check.posted == queued.get(check.trace, ZERO)
        assert check.held["awaiting posting"] == ZERO
        assert check.held_total == check.bpr02 - check.posted
        assert nonzero(check.held) == nonzero(
            {k: v for k, v in checks[check.trace].held.items() if k != "awaiting posting"}
        )

    # totals per payer and per day add up to the manifest's deposits
    per_payer: dict[str, Decimal] = defaultdict(lambda: ZERO)
    per_day: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for c in MANIFEST["checks"]:
        per_payer[c["payer_id"]] += D(c["payment_amount"])
        per_day[c["payment_date"]] += D(c["payment_amount"])
    assert {t.key: t.bpr02 for t in totals_by_payer(after)} == per_payer
    assert {t.key: t.bpr02 for t in totals_by_day(after)} == per_day
    overall = grand_total(after)
    assert overall.posted == posted and overall.unexplained == ZERO
    assert overall.checks == 42 and overall.unbalanced_checks == 0

    # one check on its own is the same as in the full report
    some = after[7]
    with db_sessions() as session:
        assert reconcile(session, trace=some.trace) == [some]
        assert reconcile(session, trace="NO-SUCH-TRACE") == []


# --------------------------------------------------------------------------- dead letters


def _retry_dead(sessions: sessionmaker[Session]) -> None:
    """What triage's retry does: the dead rows go back to pending, their items are resolved."""
    with sessions.begin() as session:
        items = open_items(session, "dead_letter")
        queries_outbox.requeue(session, [i.outbox_id for i in items if i.outbox_id], now=NOW)
        for item in items:
            update_work_item(
                session, item.id, expected_version=item.version, now=NOW,
                state="resolved", resolved_at=NOW,
            )  # fmt: skip


def test_dead_letters_hold_their_cash_until_retried_and_posted(
    db_sessions: sessionmaker[Session], tmp_path: Path, ledger: LedgerAdapter
) -> None:
    run_engine(db_sessions, sample_subset(tmp_path, DEAD_LETTER_FILES))
    (expected,) = [c for c in MANIFEST["checks"] if c["file"].endswith("835_BCB_RPG_0002.x12")]
    with db_sessions() as session:
        (before,) = reconcile(session)
        queued = sum(session.scalars(select(OutboxEntry.cash_amount)), ZERO)
    assert (
        before.bpr02 == D(expected["payment_amount"]) and before.trace == expected["trace_number"]
    )
    assert before.held["awaiting posting"] == queued and before.held["unmatched"] > ZERO

    # the ERP is down and every attempt is the last: each row dies, its cash is a dead letter
    ledger.fail_mode = "unavailable"
    report = deliver(db_sessions, ledger, max_attempts=1, breaker_policy=BreakerPolicy(1000))
    assert report.dead > 0 and report.posted == 0
    with db_sessions() as session:
        (down,) = reconcile(session)
        dead_items = open_items(session, "dead_letter")
    assert_identity([down])
    assert down.posted == ZERO and down.held["awaiting posting"] == ZERO
    assert down.held["dead letter"] == queued
    assert variance(down, "dead letter").work_item_ids == tuple(i.id for i in dead_items)
    assert variance(down, "dead letter").count == len(dead_items) == report.dead

    # back up, but the recoupment account is closed: only the PLB entry dies (permanently)
    ledger.fail_mode = ""
    ledger.set_account_active("1250", False)
    _retry_dead(db_sessions)
    with db_sessions() as session:
        (retried,) = reconcile(session)
    assert_identity([retried])
    assert retried.held["dead letter"] == ZERO and retried.held["awaiting posting"] == queued
    report = deliver(db_sessions, ledger)
    assert report.dead == 1
    with db_sessions() as session:
        (partly,) = reconcile(session)
        (plb_item,) = open_items(session, "dead_letter")
    assert_identity([partly])
    assert plb_item.details["outbox_kind"] == "plb"
    assert partly.held["dead letter"] == -D(expected["plb_total"]) == D("-26.45")
    assert variance(partly, "dead letter").work_item_ids == (plb_item.id,)
    assert partly.posted == ledger.account_balance(CASH_CLEARING) == queued + D("26.45")

    # the account reopens, the retry posts it: nothing is dead, the ledger has all the cash
    ledger.set_account_active("1250", True)
    _retry_dead(db_sessions)
    assert deliver(db_sessions, ledger).posted == 1
    with db_sessions() as session:
        (done,) = reconcile(session)
    assert_identity([done])
    assert done.posted == ledger.account_balance(CASH_CLEARING) == queued
    assert nonzero(done.held) == {"unmatched": before.held["unmatched"]}


def test_an_item_closed_without_posting_is_an_unexplained_variance(
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    run_engine(db_sessions, sample_subset(tmp_path, DEAD_LETTER_FILES))
    with db_sessions.begin() as session:
        (item,) = open_items(session, "unmatched_remittance")
        update_work_item(
            session, item.id, expected_version=item.version, now=NOW,
            state="ignored", resolved_at=NOW,
        )  # fmt: skip
    with db_sessions() as session:
        (check,) = reconcile(session)
    assert check.held["unmatched"] == ZERO
    assert check.unexplained == item.amount > ZERO and not check.balanced
    line = variance(check, "unexplained")
    assert (line.amount, line.work_item_ids) == (item.amount, (item.id,))
    assert grand_total([check]).unbalanced_checks == 1


# --------------------------------------------------------------------------- other reasons


def test_a_reversal_without_its_original_is_held_as_an_orphan(
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    run_engine(db_sessions, sample_subset(tmp_path, ORPHAN_FILES))
    (expected,) = [c for c in MANIFEST["checks"] if c["file"].endswith("835_UHC_RPG_0002.x12")]
    with db_sessions() as session:
        (check,) = reconcile(session)
        (orphan,) = open_items(session, "unmatched_remittance")
        payment = session.get(ClaimPaymentRow, orphan.claim_payment_id)
    assert_identity([check])
    assert payment is not None and payment.status_code == "22"
    assert check.bpr02 == D(expected["payment_amount"]) == D("15.14")
    assert check.held["reversal orphan"] == payment.paid == D("-340.74")
    assert check.held["unmatched"] == ZERO
    assert variance(check, "reversal orphan").work_item_ids == (orphan.id,)


def test_a_check_sent_in_two_transactions_is_one_check(
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """TRN02 + payer is the check: a second 835 transaction for it adds its BPR02, and cash
    nobody accounts for shows as unexplained instead of vanishing."""
    run_engine(db_sessions, sample_subset(tmp_path, ORPHAN_FILES))
    with db_sessions.begin() as session:
        row = session.scalars(select(Remittance)).one()
        columns = {
            c.key: getattr(row, c.key) for c in Remittance.__table__.columns if c.key != "id"
        }
        session.execute(insert(Remittance).values({**columns, "payment_amount": D("10.00")}))
    with db_sessions() as session:
        (check,) = reconcile(session)
    assert len(check.remittance_ids) == 2
    assert check.bpr02 == D("25.14") and check.balanced
    # the second transaction has no claim payments: its whole BPR02 is its own imbalance
    line = variance(check, "remittance out of balance")
    assert (line.amount, line.count, line.work_item_ids) == (D("10.00"), 1, ())


def test_a_payer_file_out_of_balance_is_named_not_unexplained(
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """BPR02 ≠ Σ CLP04 − Σ PLB is the payer's error (published files do it): the difference is
    its own variance line, and the rest of the check reconciles as usual. A cash item closed
    without posting on top of it is still unexplained."""
    folder = sample_subset(tmp_path, ORPHAN_FILES)
    path = next((folder / "835").glob("835_UHC_RPG_0002.x12"))
    text = path.read_text()
    assert text.count("*15.14*") == 1
    path.write_text(text.replace("*15.14*", "*20.14*"))
    run_engine(db_sessions, folder)
    with db_sessions() as session:
        (check,) = reconcile(session)
    assert_identity([check])
    assert check.bpr02 == D("20.14")
    assert check.held["remittance out of balance"] == D("5.00")
    assert check.held["reversal orphan"] == D("-340.74")

    with db_sessions.begin() as session:
        (orphan,) = open_items(session, "unmatched_remittance")
        update_work_item(
            session, orphan.id, expected_version=orphan.version, now=NOW,
            state="ignored", resolved_at=NOW,
        )  # fmt: skip
    with db_sessions() as session:
        (after,) = reconcile(session)
    assert after.held["remittance out of balance"] == D("5.00")
    assert after.unexplained == D("-340.74")
    assert variance(after, "unexplained").work_item_ids == (orphan.id,)


def test_quarantined_835_files_are_counted_with_their_signed_bpr02(
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """Their money is in no check: read from the kept bytes' headers, a debit BPR negative,
    an unreadable BPR02 counted without an amount, ``trace`` keeping the files that name it."""
    text = (SAMPLE_DATA / "835" / "835_AET_RPG_0001.x12").read_text()
    bad_clp = text.replace("*196.42*", "*X*", 1)  # a fatal CLP04; the BPR reads fine
    variants = {
        "credit.x12": bad_clp,
        "debit.x12": bad_clp.replace("BPR*I*18069.62*C*", "BPR*I*100.00*D*").replace(
            "TRN*1*70000013*", "TRN*1*DEBIT1*"
        ),
        "unreadable.x12": text.replace("BPR*I*18069.62*", "BPR*I*12x*"),
    }
    for name, body in variants.items():
        (tmp_path / name).write_text(body)
    results = ingest_paths(db_sessions, sorted(tmp_path.glob("*.x12")), now=NOW)
    assert {r.status for r in results} == {"quarantined"}
    with db_sessions() as session:
        found = quarantined_remittances(session)
        one = quarantined_remittances(session, trace="DEBIT1")
    assert (found.files, found.unreadable) == (3, 1)
    assert found.bpr02 == D("18069.62") - D("100.00")
    assert (one.files, one.bpr02, one.unreadable) == (1, D("-100.00"), 0)
    assert quarantined_line(found) == (
        "3 quarantined 835 file(s) ($17,969.62 in 2, 1 unreadable) are not in these figures: "
        "see claimsync files list"
    )
    assert quarantined_line(QuarantinedRemittances()) == ""
