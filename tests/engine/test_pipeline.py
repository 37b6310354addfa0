"""The posting pipeline on the committed sample data (300 claims), on SQLite and PostgreSQL.

Expectations are computed independently of the pipeline: straight from the 835 files (read with
the X12 reader, keys and entries built with ``engine.posting``), joined to the matcher's verdict
by file hash and CLP position. One sample CLP is made to break CLP03 − CLP04 = Σ CAS, so the
"claim out of balance" route is exercised too. Postings are drained by the real outbox worker
into a real embedded ledger and checked to the cent.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import (
    ClaimPayment,
    JournalEntry,
    RemittanceHeader,
    RemittanceTrailer,
    WorkItemState,
)
from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.engine.keys import claim_payment_key, plb_key
from claimsync_console.engine.outbox import entry_from_json
from claimsync_console.engine.pipeline import enqueue_approved, process_all, reprocess
from claimsync_console.engine.posting import (
    ClaimOutOfBalanceError,
    MissingRules,
    approval_needed,
    build_payment_entry,
    build_plb_entry,
)
from claimsync_console.engine.rules import RulesBook, load_rules, sample_rules_path
from claimsync_console.engine.samples import sample_files
from claimsync_console.engine.worker import drain
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.store.models import ClaimPaymentRow, Remittance, SourceFile
from claimsync_console.store.models_engine import OutboxEntry, PaymentMatch, WorkItem
from claimsync_console.store.queries_engine import update_work_item
from claimsync_console.x12.document import read_document

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
D = Decimal
BROKEN_FILE = "835/835_MCR_NMC_0001.x12"
UNMAPPED = ("CO-B7", "OA-121")


# --------------------------------------------------------------------------- helpers


def copy_samples(tmp_path: Path, only: tuple[str, ...] = ()) -> Path:
    """A copy of sample_data (``only``: file name fragments to keep) with one claim-level CAS
    made a dollar too big, so that its CLP no longer balances."""
    folder = tmp_path / "samples"
    shutil.copytree(SAMPLE_DATA, folder)
    broken = folder / BROKEN_FILE
    text = broken.read_text()
    fixed = re.sub(r"CAS\*CO\*45\*4436\.05", "CAS*CO*45*4437.05", text, count=1)
    assert fixed != text
    broken.write_text(fixed)
    if only:
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["files"] = [f for f in manifest["files"] if any(o in f["path"] for o in only)]
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def fixed_rules(tmp_path: Path, text: str | None = None) -> RulesBook:
    """A copy of the sample rules with the two deliberately unmapped CARCs mapped."""
    text = text or sample_rules_path().read_text()
    text = text.replace("[adjustments]\n", '[adjustments]\n"CO-B7" = "4100"\n"OA-121" = "4120"\n')
    path = tmp_path / "fixed-rules.toml"
    path.write_text(text)
    return load_rules(path)


@dataclass
class Expected:
    """What the pipeline must do, from the files and the matcher's verdicts."""

    outbox: dict[str, tuple[str, JournalEntry, Decimal]] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    out_of_balance: set[str] = field(default_factory=set)
    approvals: dict[str, JournalEntry] = field(default_factory=dict)
    planted_pcns: set[str] = field(default_factory=set)
    deposits: dict[str, Decimal] = field(default_factory=dict)


def verdicts(session: Session) -> dict[tuple[str, int], str]:
    """(file sha256, CLP segment position) -> match status."""
    rows = session.execute(
        select(SourceFile.sha256, ClaimPaymentRow.segment_start, PaymentMatch.status)
        .join(ClaimPaymentRow, ClaimPaymentRow.source_file_id == SourceFile.id)
        .join(PaymentMatch, PaymentMatch.claim_payment_id == ClaimPaymentRow.id)
    )
    return {(sha, start): status for sha, start, status in rows}


def expect(folder: Path, rules: RulesBook, status: dict[tuple[str, int], str]) -> Expected:
    found = Expected()
    for path in sorted((folder / "835").glob("*.x12")):
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if not any(s == sha for s, _ in status):
            continue  # not ingested in this scenario
        for item in read_document(data, path.name):
            if isinstance(item, RemittanceHeader):
                header = item
                found.deposits[header.trace_number] = header.payment_amount
            elif isinstance(item, ClaimPayment):
                if status.get((sha, item.segment_start)) not in ("matched", "reversal_linked"):
                    continue
                if item.is_denial and not item.paid:
                    continue  # a whole-claim denial never posts
                key = claim_payment_key(sha, header, item)
                kind = "reversal" if item.is_reversal else "payment"
                _classify(found, rules, key, kind, item, header)
            elif isinstance(item, RemittanceTrailer) and item.provider_adjustments:
                key = plb_key(sha, header)
                _classify(found, rules, key, "plb", item, header)
    return found


def _classify(
    found: Expected, rules: RulesBook, key: str, kind: str, item: Any, header: RemittanceHeader
) -> None:
    on = header.payment_date or NOW.date()
    try:
        if isinstance(item, ClaimPayment):
            result = build_payment_entry(header, item, rules, source_key=key, entry_date=on)
        else:
            plbs = item.provider_adjustments
            result = build_plb_entry(header, plbs, rules, source_key=key, entry_date=on)
    except ClaimOutOfBalanceError:
        found.out_of_balance.add(key)
        return
    if isinstance(result, MissingRules):
        found.missing[key] = sorted({f"{m.kind}:{m.key}" for m in result.missing})
        found.planted_pcns.add(item.patient_control_number)
    elif result.entry is not None and approval_needed(result, rules, "auto") is not None:
        found.approvals[key] = result.entry
    elif result.entry is not None:
        found.outbox[key] = (kind, result.entry, result.cash)


def counts(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count(OutboxEntry.id))) or 0,
        session.scalar(select(func.count(WorkItem.id))) or 0,
        session.scalar(select(func.max(WorkItem.version))) or 0,
    )


def held_cash_by_trace(session: Session) -> dict[str, Decimal]:
    """Σ outbox cash + cash held by open items, per check: what reconciliation adds up."""
    totals: defaultdict[str, Decimal] = defaultdict(Decimal)
    for trace, cash in session.execute(select(OutboxEntry.trace_number, OutboxEntry.cash_amount)):
        totals[trace] += cash
    open_items = session.scalars(
        select(WorkItem).where(WorkItem.state.in_(("open", "in_progress")))
    ).all()
    for item in open_items:
        if item.kind in ("mapping_error", "approval"):
            totals[item.trace_number] += D(item.details["cash_amount"])
        elif item.kind == "unmatched_remittance":
            totals[item.trace_number] += item.amount  # CLP04 as paid
    return totals


def ledger_matches_outbox(ledger: LedgerAdapter, session: Session) -> Decimal:
    """Every outbox row is posted; the ledger's balances are exactly the outbox entries'."""
    rows = session.scalars(select(OutboxEntry)).all()
    assert {r.status for r in rows} == {"posted"}
    expected: defaultdict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        for line in entry_from_json(row.entry).lines:
            expected[line.account] += line.debit - line.credit
    balances = {a: b for a, b in ledger.trial_balance().items() if b}
    assert balances == {a: b for a, b in expected.items() if b}
    cash = sum((r.cash_amount for r in rows), D(0))
    assert ledger.account_balance("1010") == cash  # every sample payer clears through 1010
    return cash


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[LedgerAdapter]:
    """A real embedded ledger. Its file goes on tmpfs when the machine has one: these tests
    check amounts, not durability, and the ledger's fsync per entry is most of their time."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path
    yield LedgerAdapter({"path": str(folder / "ledger.sqlite3"), "bootstrap_year": 2026})
    if folder != tmp_path:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def rules() -> RulesBook:
    return load_rules(sample_rules_path())


def ingest(sessions: sessionmaker[Session], folder: Path) -> None:
    results = ingest_paths(sessions, sample_files(folder), now=NOW)
    assert {r.status for r in results} == {"loaded"}


# --------------------------------------------------------------------------- the whole story


@pytest.mark.slow
def test_sample_data_posts_holds_and_reconciles_to_the_cent(
    db_sessions: sessionmaker[Session], tmp_path: Path, rules: RulesBook, ledger: LedgerAdapter
) -> None:
    folder = copy_samples(tmp_path)
    ingest(db_sessions, folder)
    summary = process_all(db_sessions, rules, now=NOW)

    with db_sessions() as session:
        exp = expect(folder, rules, verdicts(session))
        outbox = {r.idempotency_key: r for r in session.scalars(select(OutboxEntry))}
        items = session.scalars(select(WorkItem)).all()
    # every matched, postable payment with rules (and every check's PLB) is queued, exactly
    assert outbox.keys() == exp.outbox.keys() and len(outbox) > 250
    for key, row in outbox.items():
        kind, entry, cash = exp.outbox[key]
        stored = entry_from_json(row.entry)
        stored.assert_balanced()
        assert (row.kind, stored, row.cash_amount) == (kind, entry, cash)
        assert row.amount == entry.total_debit and row.status == "pending"
    assert summary.posting.enqueued + summary.posting.plb_enqueued == len(outbox)
    assert summary.posting.reversals == 8 and summary.posting.plb_enqueued == 8

    # mapping errors: exactly the planted CARCs, each named, plus the broken claim
    mapping = {i.source_key: i for i in items if i.kind == "mapping_error"}
    assert mapping.keys() == exp.missing.keys() | exp.out_of_balance
    assert len(exp.missing) >= 2 and len(exp.out_of_balance) == 1
    manifest = json.loads((SAMPLE_DATA / "manifest.json").read_text())
    assert exp.planted_pcns <= set(manifest["problem_pcns"]["unusual_carc"])
    for key, names in exp.missing.items():
        assert mapping[key].details["missing"] == names
        assert {n.split(":", 1)[1] for n in names} <= set(UNMAPPED)
        assert mapping[key].claim_payment_id is not None and mapping[key].state == "open"
    (broken_key,) = exp.out_of_balance
    assert mapping[broken_key].details["reason"] == "claim out of balance"
    assert mapping[broken_key].error_signature == "claim out of balance"

    # approvals hold the exact entry, unposted
    approvals = {i.source_key: i for i in items if i.kind == "approval"}
    assert approvals.keys() == exp.approvals.keys() and approvals
    for key, item in approvals.items():
        assert entry_from_json(item.details["posting"]["entry"]) == exp.approvals[key]
        assert item.requested_by == "engine" and key not in outbox

    # reconciliation: every check's deposit is posted cash plus cash its open items hold
    with db_sessions() as session:
        assert held_cash_by_trace(session) == exp.deposits

    # a second run changes nothing
    with db_sessions() as session:
        before = counts(session)
    again = process_all(db_sessions, rules, now=NOW)
    assert again.posting.considered == 0 and again.reprocess.considered == 0
    with db_sessions() as session:
        assert counts(session) == before

    # the worker delivers everything to the ledger; its cash clearing equals the cash posted
    report = drain(db_sessions, ledger, worker_id="test", batch_size=100, once=True)
    assert report.posted == len(outbox) and report.dead == 0
    with db_sessions() as session:
        cash = ledger_matches_outbox(ledger, session)
    assert cash == sum((c for _, _, c in exp.outbox.values()), D(0))

    # the rules are fixed: the next run resolves the CARC mapping errors and posts them
    fixed = fixed_rules(tmp_path)
    third = process_all(db_sessions, fixed, now=NOW)
    assert third.reprocess.resolved == third.reprocess.enqueued == len(exp.missing)
    assert third.reprocess.out_of_balance == 1 and third.posting.considered == 0
    with db_sessions() as session:
        for key in exp.missing:
            item = session.scalars(select(WorkItem).where(WorkItem.source_key == key)).one()
            assert item.state == "resolved" and item.resolved_at is not None
            queued = session.get(OutboxEntry, item.outbox_id)
            assert queued is not None and queued.idempotency_key == key
            assert queued.work_item_id == item.id
            assert queued.cash_amount == D(item.details["cash_amount"])
        still = session.scalars(select(WorkItem).where(WorkItem.source_key == broken_key)).one()
        assert still.state == "open"
        assert held_cash_by_trace(session) == exp.deposits
    drain(db_sessions, ledger, worker_id="test", batch_size=100, once=True)
    with db_sessions() as session:
        ledger_matches_outbox(ledger, session)


# --------------------------------------------------------------------------- smaller scenarios

SMALL = ("837P_RPG", "835_BCB_RPG_0002", "835_UHC_RPG")  # a WO recoupment, L6 interest, reversal


def test_a_plb_without_a_rule_waits_then_goes_to_approval_after_the_fix(
    db_sessions: sessionmaker[Session], tmp_path: Path, rules: RulesBook
) -> None:
    ingest(db_sessions, copy_samples(tmp_path, SMALL))
    text = sample_rules_path().read_text()
    without_wo = text.replace('WO = "1250"', "")
    partial = load_rules(_write(tmp_path / "no-wo.toml", without_wo))
    first = process_all(db_sessions, partial, now=NOW)
    assert first.posting.mapping_errors == 1 and first.posting.plb_enqueued == 1
    with db_sessions() as session:
        item = session.scalars(select(WorkItem).where(WorkItem.kind == "mapping_error")).one()
        assert item.details["missing"] == ["plb:WO"] and item.claim_payment_id is None
        assert item.source_key.startswith("plb:") and item.amount == D("-26.45")
        item_id, version = item.id, item.version

    # the same rules again: the sweep skips it (same rules, same answer), nothing moves
    with db_sessions() as session, session.begin():
        assert reprocess(session, partial, now=NOW).considered == 0
        assert session.get(WorkItem, item_id).version == version  # type: ignore[union-attr]
        # asked for by id it is retried, and still lacks its rule
        retried = reprocess(session, partial, now=NOW, work_item_ids=[item_id])
        assert (retried.considered, retried.still_missing, retried.resolved) == (1, 1, 0)

    # fixed, but the recoupment is now over the engine's limit: it moves to an approval item
    strict = text.replace(
        '{ role = "auto", max_amount = "1000.00" }', '{ role = "auto", max_amount = "10.00" }'
    )
    assert strict != text
    with db_sessions() as session, session.begin():
        fixed = load_rules(_write(tmp_path / "wo-strict.toml", strict))
        done = reprocess(session, fixed, now=NOW, work_item_ids=[item_id])
        assert (done.resolved, done.approvals, done.enqueued) == (1, 1, 0)
        resolved = session.get(WorkItem, item_id)
        assert resolved is not None and resolved.state == "resolved"
        assert resolved.details["resolution"]["outcome"] == "approval"
        approval = session.get(WorkItem, resolved.details["resolution"]["target_id"])
        assert approval is not None and approval.kind == "approval"
        assert approval.source_key == resolved.source_key and approval.amount == D("26.45")
        assert approval.details["posting"]["kind"] == "plb"
        plb_row = session.get(OutboxEntry, enqueue_approved(session, approval, now=NOW))
        assert plb_row is not None and plb_row.kind == "plb" and plb_row.cash_amount == D("-26.45")
        assert (
            plb_row.idempotency_key == resolved.source_key and plb_row.work_item_id == approval.id
        )
    # the approval (open) and the resolved mapping error keep the check out of later runs
    assert process_all(db_sessions, fixed, now=NOW).posting.considered == 0


def test_a_concurrent_change_wins_over_reprocess(
    db_sessions: sessionmaker[Session], tmp_path: Path, rules: RulesBook
) -> None:
    ingest(db_sessions, copy_samples(tmp_path, SMALL))
    without_wo = sample_rules_path().read_text().replace('WO = "1250"', "")
    process_all(db_sessions, load_rules(_write(tmp_path / "no-wo.toml", without_wo)), now=NOW)
    with db_sessions() as session, session.begin():
        item = session.scalars(select(WorkItem).where(WorkItem.kind == "mapping_error")).one()
        item_id, version = item.id, item.version
        bind = session.get_bind()
        assert isinstance(bind, Engine)

        def analyst_first(_c: Any, cursor: Any, statement: str, *_: Any) -> None:
            """Just before reprocess writes the item, someone else changes it (same row,
            same transaction, through the raw cursor so no event fires again)."""
            if not fired and statement.lstrip().upper().startswith("UPDATE WORK_ITEMS"):
                fired.append(statement)
                cursor.execute(f"UPDATE work_items SET version = version + 1 WHERE id = {item_id}")

        fired: list[str] = []
        event.listen(bind, "before_cursor_execute", analyst_first)
        try:
            done = reprocess(session, rules, now=NOW, work_item_ids=[item_id])
        finally:
            event.remove(bind, "before_cursor_execute", analyst_first)
        assert len(fired) == 1
        assert (done.considered, done.conflicts, done.resolved, done.enqueued) == (1, 1, 0, 0)
        session.expire_all()
        after = session.get(WorkItem, item_id)
        assert after is not None and after.state == "open" and after.version == version + 1
        assert session.scalar(select(func.count()).where(OutboxEntry.kind == "plb")) == 1


def test_an_approval_holds_its_entry_until_enqueue_approved(
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    ingest(db_sessions, copy_samples(tmp_path, SMALL))
    text = sample_rules_path().read_text().replace('max_amount = "7500.00"', 'max_amount = "5.00"')
    strict = load_rules(_write(tmp_path / "strict.toml", text))
    summary = process_all(db_sessions, strict, now=NOW)
    assert summary.posting.approvals >= 3
    with db_sessions() as session, session.begin():
        item = session.scalars(
            select(WorkItem).where(WorkItem.kind == "approval").order_by(WorkItem.id)
        ).first()
        assert item is not None and item.error == "CO-45 over the approval threshold"
        assert item.amount > D("5.00") and item.details["required_role"] == "supervisor"
        assert session.scalar(
            select(func.count(OutboxEntry.id)).where(OutboxEntry.idempotency_key == item.source_key)
        ) == 0  # fmt: skip
        outbox_id = enqueue_approved(session, item, now=NOW)
        assert enqueue_approved(session, item, now=NOW) == outbox_id  # approving twice: once
        row = session.get(OutboxEntry, outbox_id)
        assert row is not None and row.idempotency_key == item.source_key
        assert entry_from_json(row.entry) == entry_from_json(item.details["posting"]["entry"])
        assert row.cash_amount == D(item.details["cash_amount"]) and row.work_item_id == item.id
    # the approval item, even while open, keeps the payment out of later runs
    assert process_all(db_sessions, strict, now=NOW).posting.considered == 0


def test_a_closed_mapping_error_stays_closed(
    db_sessions: sessionmaker[Session], tmp_path: Path, rules: RulesBook
) -> None:
    ingest(db_sessions, copy_samples(tmp_path, SMALL))
    partial = load_rules(
        _write(tmp_path / "no-wo.toml", sample_rules_path().read_text().replace('WO = "1250"', ""))
    )
    process_all(db_sessions, partial, now=NOW)
    with db_sessions() as session, session.begin():
        item = session.scalars(select(WorkItem).where(WorkItem.kind == "mapping_error")).one()
        update_work_item(
            session, item.id, expected_version=item.version, now=NOW,
            state=WorkItemState.IGNORED.value, resolved_at=NOW,
        )  # fmt: skip
        item_id = item.id
    # neither a new run with the fixed rules nor the sweep reopens or posts it
    again = process_all(db_sessions, rules, now=NOW)
    assert again.posting.considered == 0 and again.reprocess.considered == 0
    with db_sessions() as session:
        assert session.get(WorkItem, item_id).state == "ignored"  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).where(OutboxEntry.kind == "plb")) == 1


def test_the_entry_date_falls_back_to_the_production_date(
    db_sessions: sessionmaker[Session], tmp_path: Path, rules: RulesBook
) -> None:
    ingest(db_sessions, copy_samples(tmp_path, SMALL))
    with db_sessions() as session, session.begin():
        first = session.scalars(select(Remittance).order_by(Remittance.id)).first()
        assert first is not None and first.production_date is not None
        session.execute(update(Remittance).values(payment_date=None))
        produced = {r.id: r.production_date for r in session.scalars(select(Remittance))}
    process_all(db_sessions, rules, now=NOW)
    with db_sessions() as session:
        rows = session.scalars(select(OutboxEntry)).all()
        assert rows
        for row in rows:
            assert entry_from_json(row.entry).entry_date == produced[row.remittance_id or 0]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
