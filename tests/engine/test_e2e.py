"""End to end, on SQLite and PostgreSQL: generated 837 + 277CA + 835 -> ingest -> sync -> ledger.

The sample set is generated fresh (``engine.samplegen``, its own seed), ingested, matched and
posted by ``process_all``, and delivered by the real outbox worker into a real embedded ledger.
The planted problems are then triaged the way an analyst would: the unmapped CARCs get rules
and their mapping errors are reprocessed; every approval is approved by a supervisor. Unknown
claim numbers stay unmatched (nobody can remap them to a claim that does not exist).

The expected ledger is computed here, independently of the engine: from the 835 files read with
the X12 reader and the rules TOML read with ``tomllib``, applying the primer's posting recipe
(cash debited with CLP04, each CAS to its account unless it is a denial code, the receivable
credited with the charge less denied amounts; a reversal is its original's mirror; a whole-claim
denial posts nothing; a check's PLBs post against cash clearing). Every account's balance must
match to the cent, and reconcile must show every check's deposit as posted cash plus the
unmatched cash the manifest planted, with nothing unexplained.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import ClaimPayment, RemittanceHeader, RemittanceTrailer
from claimsync_console.engine.audit_export import verify
from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.engine.pipeline import process_all
from claimsync_console.engine.reconcile import HELD_REASONS, reconcile
from claimsync_console.engine.rules import load_rules, sample_rules_path
from claimsync_console.engine.runtime import open_adapter
from claimsync_console.engine.samplegen import generate
from claimsync_console.engine.samples import sample_files
from claimsync_console.engine.triage import TriageService
from claimsync_console.engine.worker import drain
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.store.models_engine import WorkItem
from claimsync_console.x12.document import read_document

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ZERO = Decimal("0.00")
CLAIMS, SEED = 600, 20261202
#: The rules the analyst adds for the generator's unusual CARCs (accounts of the ledger chart).
FIXES = {"CO-B7": "4100", "OA-121": "4120"}
WHOLE_DENIAL, REVERSAL = "4", "22"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("e2e") / "samples"
    summary = generate(CLAIMS, SEED, folder)
    return folder, json.loads(summary.manifest_path.read_text())


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[LedgerAdapter]:
    """The real embedded ledger; on tmpfs when there is one (its fsync per entry is slow)."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path
    adapter = open_adapter("ledger", folder / "ledger.sqlite", today=NOW.date())
    assert isinstance(adapter, LedgerAdapter)
    yield adapter
    if folder != tmp_path:
        shutil.rmtree(folder, ignore_errors=True)


def fixed_rules(tmp_path: Path) -> Path:
    """The sample rules plus a rule for each unusual CARC, as an analyst would add them."""
    text = sample_rules_path().read_text()
    anchor = '"CO-197" = { denial = true'
    assert text.count(anchor) == 1
    added = "".join(f'"{code}" = {{ account = "{account}" }}\n' for code, account in FIXES.items())
    path = tmp_path / "fixed-rules.toml"
    path.write_text(text.replace(anchor, added + anchor))
    return path


# --------------------------------------------------------------------------- the independent books


@dataclass
class Book:
    """Debit-positive balances per account, and per check the cash the unknown claims hold."""

    balances: dict[str, Decimal]
    unmatched: dict[str, Decimal]
    deposits: dict[str, Decimal]


class Recipe:
    """The primer's posting recipe over the rules TOML, read with tomllib (not engine.rules)."""

    def __init__(self, rules_path: Path) -> None:
        raw = tomllib.loads(rules_path.read_text())
        self.cash = raw["defaults"]["cash_clearing"]
        self.receivable = {}
        for payer_id, payer in raw["payers"].items():
            for name in (payer_id, *payer.get("aliases", ())):
                self.receivable[name] = payer["receivable"]
        self.adjustments = raw["adjustments"]
        self.plb = raw["plb"]

    def payment(self, payer: str, payment: ClaimPayment) -> dict[str, Decimal]:
        lines: dict[str, Decimal] = defaultdict(lambda: ZERO)
        if payment.status_code == WHOLE_DENIAL and payment.paid == ZERO:
            return lines
        denied = ZERO
        adjustments = [*payment.adjustments, *(a for s in payment.services for a in s.adjustments)]
        for cas in adjustments:
            rule = (
                self.adjustments.get(f"{cas.group}-{cas.reason_code}")
                or self.adjustments[f"{cas.group}-*"]
            )
            if rule.get("denial"):
                denied += cas.amount
            else:
                lines[rule["account"]] += cas.amount
        lines[self.cash] += payment.paid
        lines[self.receivable[payer]] -= payment.charge - denied
        return lines

    def plbs(self, trailer: RemittanceTrailer) -> dict[str, Decimal]:
        lines: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for plb in trailer.provider_adjustments:
            lines[self.cash] -= plb.amount
            lines[self.plb[plb.reason_code]] += plb.amount
        return lines


def expected_books(folder: Path, manifest: dict[str, Any], rules_path: Path) -> Book:
    recipe = Recipe(rules_path)
    unknown = set(manifest["problem_pcns"]["unknown_pcn"])
    balances: dict[str, Decimal] = defaultdict(lambda: ZERO)
    unmatched: dict[str, Decimal] = defaultdict(lambda: ZERO)
    deposits: dict[str, Decimal] = {}
    originals: dict[tuple[str, str], dict[str, Decimal]] = {}
    for entry in manifest["files"]:
        if entry["kind"] != "835":
            continue
        path = folder / entry["path"]
        header: RemittanceHeader | None = None
        for item in read_document(path.read_bytes(), path.name):
            if isinstance(item, RemittanceHeader):
                header = item
                deposits[item.trace_number] = item.payment_amount
            elif isinstance(item, ClaimPayment):
                assert header is not None
                payer = header.payer.identifier
                if item.patient_control_number in unknown:
                    unmatched[header.trace_number] += item.paid
                    continue
                key = (payer, item.payer_claim_control_number)
                if item.status_code == REVERSAL:  # the mirror of what its original posted
                    lines = {a: -v for a, v in originals.pop(key).items()}
                else:
                    lines = originals[key] = recipe.payment(payer, item)
                for account, amount in lines.items():
                    balances[account] += amount
            elif isinstance(item, RemittanceTrailer):
                for account, amount in recipe.plbs(item).items():
                    balances[account] += amount
    return Book(dict(balances), dict(unmatched), deposits)


# --------------------------------------------------------------------------- the test


def open_items(sessions: sessionmaker[Session], kind: str) -> list[WorkItem]:
    with sessions() as session:
        return list(
            session.scalars(
                select(WorkItem)
                .where(WorkItem.kind == kind, WorkItem.state.in_(("open", "in_progress")))
                .order_by(WorkItem.id)
            )
        )


def deliver(sessions: sessionmaker[Session], ledger: LedgerAdapter) -> None:
    report = drain(sessions, ledger, worker_id="e2e", batch_size=200, now_fn=lambda: NOW)
    assert report.dead == 0


def test_generated_claims_and_remittances_end_in_the_ledger_to_the_cent(
    db_sessions: sessionmaker[Session],
    ledger: LedgerAdapter,
    generated: tuple[Path, dict[str, Any]],
    tmp_path: Path,
) -> None:
    folder, manifest = generated
    results = ingest_paths(db_sessions, sample_files(folder), now=NOW)
    assert results and {r.status for r in results} == {"loaded"}

    # sync with the shipped rules: the unusual CARCs stop as mapping errors naming the code
    process_all(db_sessions, load_rules(sample_rules_path()), now=NOW)
    deliver(db_sessions, ledger)
    mapping = open_items(db_sessions, "mapping_error")
    assert {i.patient_control_number for i in mapping} == set(
        manifest["problem_pcns"]["unusual_carc"]
    )
    assert all(any(c in i.error for c in FIXES) for i in mapping)
    unmatched = open_items(db_sessions, "unmatched_remittance")
    assert {i.patient_control_number for i in unmatched} == set(
        manifest["problem_pcns"]["unknown_pcn"]
    )

    # the analyst adds the rules and reprocesses; a supervisor approves what is over the tiers
    rules_path = fixed_rules(tmp_path)
    rules = load_rules(rules_path)
    analyst = TriageService(db_sessions, rules, operator="ann", role="analyst", now_fn=lambda: NOW)
    for item in mapping:
        analyst.remap(item.id, reprocess=True, note="rule added for the unusual CARC")
    supervisor = TriageService(
        db_sessions, rules, operator="sam", role="supervisor", now_fn=lambda: NOW
    )
    approvals = open_items(db_sessions, "approval")
    assert approvals, "the sample set plants adjustments over the engine's limits"
    for item in approvals:
        supervisor.approve(item.id, note="checked against the contract")
    process_all(db_sessions, rules, now=NOW)  # nothing left to do: a second run is a no-op
    deliver(db_sessions, ledger)
    for kind in ("mapping_error", "approval", "dead_letter"):
        assert open_items(db_sessions, kind) == [], kind
    denials = open_items(db_sessions, "denial")  # whole-claim denials: open, holding no cash
    assert len(denials) >= manifest["counts"]["outcome_denied"] // 2

    # the ledger, account by account, to the cent
    book = expected_books(folder, manifest, rules_path)
    balances = {a: b for a, b in ledger.trial_balance().items() if b != ZERO}
    assert balances == {a: b for a, b in book.balances.items() if b != ZERO}
    assert sum(balances.values(), ZERO) == ZERO

    # reconcile: every deposit is posted cash plus the unmatched cash, nothing unexplained
    with db_sessions() as session:
        checks = reconcile(session)
    assert (
        {c.trace: c.bpr02 for c in checks}
        == book.deposits
        == {c["trace_number"]: Decimal(c["payment_amount"]) for c in manifest["checks"]}
    )
    for check in checks:
        assert set(check.held) == set(HELD_REASONS)
        assert check.unexplained == ZERO and check.balanced, check
        held = {reason: amount for reason, amount in check.held.items() if amount != ZERO}
        expected = book.unmatched.get(check.trace, ZERO)
        assert held == ({"unmatched": expected} if expected else {}), check.trace
        assert check.posted == check.bpr02 - expected
    assert sum((c.posted for c in checks), ZERO) == balances.get(Recipe(rules_path).cash, ZERO)
    with db_sessions() as session:  # every remap and approval above left its audit row
        assert verify(session).intact
