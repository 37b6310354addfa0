"""A runbook, as a script would run it, through ``claimsync`` commands only.

Generate sample files, ingest them, and sync into an embedded ledger whose accounting period is
closed: every posting is refused (a real ``ClosedPeriodError`` from the real ledger) and dies as a
dead letter. The script lists the dead-letter queue as JSON, the accountant reopens the period
(the fix), the script retries the whole queue with ``--yes`` and syncs again: the queue is
empty, every outbox row is posted, the ledger balances and every check reconciles. It runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from claimsync_console.cli.app import app
from claimsync_console.engine.samples import sample_files
from claimsync_console.erp.ledger import LedgerAdapter

runner = CliRunner()


@pytest.fixture(name="env")
def env_fixture(db_url: str, tmp_path: Path) -> dict[str, str | None]:
    """The store on each backend (``db_url``: SQLite, and PostgreSQL when it answers)."""
    return {
        "CLAIMSYNC_DATA_DIR": str(tmp_path / "data"),
        "CLAIMSYNC_DATABASE_URL": db_url,
        "CLAIMSYNC_LEDGER_PATH": str(tmp_path / "ledger.sqlite"),
        "CLAIMSYNC_CONFIG": None,
        "CLAIMSYNC_RULES_PATH": None,
        "CLAIMSYNC_OPERATOR": "night-job",
        "CLAIMSYNC_ROLE": "analyst",
    }


def claimsync(env: dict[str, str | None], *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, (args, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stdout + result.stderr
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_dead_letters_from_a_closed_period_are_retried_after_the_fix(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    samples = tmp_path / "samples"
    claimsync(env, "sample", "generate", "--claims", "40", "--seed", "5", "--out", str(samples))
    manifest = json.loads((samples / "manifest.json").read_text())
    claimsync(env, "ingest", *(str(p) for p in sample_files(samples)))

    # The ERP's books: every month the checks are dated in is open, then one is closed.
    days = sorted({date.fromisoformat(c["payment_date"]) for c in manifest["checks"]})
    ledger = LedgerAdapter({"path": str(env["CLAIMSYNC_LEDGER_PATH"])})
    ledger.bootstrap_chart(year=days[0].year)
    for year in {d.year for d in days}:
        ledger.open_year(year)
    for day in days:
        ledger.close_period(day)

    first = claimsync(env, "sync", "run", "--once", "--json", code=1)
    assert first["dead"] > 0 and first["posted"] == 0

    dead = claimsync(env, "items", "list", "--queue", "dead-letter", "--limit", "1000", "--json")
    assert dead["count"] == first["dead"] and dead["more"] is False
    assert all("closed" in item["error"] for item in dead["items"])

    for day in days:  # the fix: the accountant reopens the period
        ledger.reopen_period(day)
    retried = claimsync(env, "retry", "--queue", "dead-letter", "--yes", "--json")
    assert retried["succeeded"] == dead["count"] and retried["failed"] == 0
    assert Decimal(retried["preview"]["total"]) == Decimal(dead["total"])

    second = claimsync(env, "sync", "run", "--once", "--json")
    assert second["posted"] == dead["count"] and second["dead"] == 0

    after = claimsync(env, "items", "list", "--queue", "dead-letter", "--json")
    assert after["count"] == 0 and after["items"] == []
    status = claimsync(env, "status", "--json")
    assert status["dashboard"]["outbox"]["depth"] == 0
    assert status["dashboard"]["outbox"]["dead"] == 0
    assert ledger.entry_count() == status["dashboard"]["outbox"]["posted"] > 0
    assert sum(ledger.trial_balance().values(), Decimal(0)) == 0
    reconciled = claimsync(env, "reconcile", "--json")
    assert reconciled["balanced"] is True
    assert Decimal(reconciled["totals"]["unexplained"]) == 0
    claimsync(env, "audit", "verify")
