"""Every dollar of every public 835 is accounted for, through the real engine.

The published 835s of the shared corpus have no claims to match (the corpus has no 837/835
pairs), so their claim payments become unmatched items, their PLBs post, and payers' own
balancing errors show as "remittance out of balance". Whatever the file, each check must add
up: BPR02 = posted + held, with nothing unexplained. This runs the identity over real-world
shapes the generator does not make (4010, debit BPRs, PLB composites, several transactions,
published files that do not balance)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.engine.pipeline import process_all
from claimsync_console.engine.reconcile import HELD_REASONS, reconcile
from claimsync_console.engine.rules import load_rules, sample_rules_path
from claimsync_console.engine.worker import drain
from claimsync_console.erp.ledger import LedgerAdapter
from tests.engine.test_reconcile import ledger  # noqa: F401 - the fixture
from tests.x12.corpus import corpus_rows

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ZERO = Decimal("0.00")
REMITTANCES = [row for row in corpus_rows() if row.transaction_type == "835"]

pytestmark = pytest.mark.skipif(not REMITTANCES, reason="x12 corpus not present")


def test_every_public_835_reconciles_to_the_cent(
    db_sessions: sessionmaker[Session],
    ledger: LedgerAdapter,  # noqa: F811 - the fixture
) -> None:
    results = ingest_paths(
        db_sessions, [row.path for row in REMITTANCES], now=NOW, check_resent=False
    )
    loaded = [r for r in results if r.status == "loaded"]
    assert len(loaded) >= 20, "the corpus should load at least twenty 835s"
    process_all(db_sessions, load_rules(sample_rules_path()), now=NOW)
    drain(db_sessions, ledger, worker_id="test", batch_size=100, now_fn=lambda: NOW)

    with db_sessions() as session:
        checks = reconcile(session)
    assert checks
    posted = ZERO
    for check in checks:
        assert set(check.held) == set(HELD_REASONS)
        assert check.bpr02 == check.posted + check.held_total + check.unexplained
        assert check.unexplained == ZERO, check
        assert sum((v.amount for v in check.variances), ZERO) == check.held_total
        posted += check.posted
    # Posted cash is what the ledger's cash-clearing account (sample rules: 1010) received.
    assert ledger.account_balance("1010") == posted
    # The real-world shapes were there: a reversal with no original, a PLB with no rule, and
    # a payer's own imbalance, each held under its reason rather than unexplained.
    reasons = {reason for check in checks for reason, amount in check.held.items() if amount}
    assert {"reversal orphan", "mapping error", "remittance out of balance"} <= reasons
