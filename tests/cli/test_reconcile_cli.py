"""``claimsync reconcile`` (and the dashboard in ``claimsync status --json``) through CliRunner.

The store is prepared by the real engine on a slice of the committed samples: two checks of the
RPG clinic, one with an unknown claim number, one with a reversal whose original is missing.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from claimsync_console.cli.app import app
from claimsync_console.engine.reconcile import HELD_REASONS
from claimsync_console.engine.runtime import open_store
from claimsync_console.store.models import Remittance
from claimsync_console.store.models_engine import WorkItem
from claimsync_console.store.queries_engine import update_work_item
from tests.engine.test_reconcile import MANIFEST, NOW, run_engine, sample_subset

FILES = ("837P_RPG", "835_BCB_RPG_0002", "835_UHC_RPG_0002")
CHECK_KEYS = {
    "trace", "payer", "payer_name", "payment_date", "bpr02", "posted", "held", "held_total",
    "unexplained", "balanced", "variances", "remittance_ids",
}  # fmt: skip
TOTAL_KEYS = {"checks", "bpr02", "posted", "held", "unexplained", "unbalanced_checks"}

SAMPLE_835 = Path(__file__).resolve().parents[2] / "sample_data" / "835"
runner = CliRunner()


@pytest.fixture
def database(db_url: str, tmp_path: Path) -> str:
    store = open_store(db_url)
    try:
        run_engine(store.sessions, sample_subset(tmp_path, FILES))
    finally:
        store.dispose()
    return db_url


def reconcile(database: str, *args: str) -> Any:
    return runner.invoke(app, ["reconcile", "--database", database, *args])


def money(value: Any) -> Decimal:
    assert isinstance(value, str)  # never a float
    amount = Decimal(value)
    assert amount == amount.quantize(Decimal("0.01"))
    return amount


def test_json_shape_and_exit_0_when_everything_is_explained(database: str) -> None:
    result = reconcile(database, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {
        "balanced", "totals", "checks", "by_payer", "by_day", "quarantined_835",
    }  # fmt: skip
    assert report["balanced"] is True
    expected = {
        c["trace_number"]: c
        for c in MANIFEST["checks"]
        if c["file"].endswith(("835_BCB_RPG_0002.x12", "835_UHC_RPG_0002.x12"))
    }
    assert [c["trace"] for c in report["checks"]] == sorted(expected)
    for check in report["checks"]:
        assert set(check) == CHECK_KEYS
        assert list(check["held"]) == list(HELD_REASONS)
        assert money(check["bpr02"]) == Decimal(expected[check["trace"]]["payment_amount"])
        assert check["payer"] == expected[check["trace"]]["payer_id"]
        assert check["payment_date"] == expected[check["trace"]]["payment_date"]
        held = sum((money(v) for v in check["held"].values()), Decimal(0))
        assert money(check["held_total"]) == held
        assert money(check["bpr02"]) == money(check["posted"]) + held
        assert money(check["unexplained"]) == 0 and check["balanced"] is True
        for line in check["variances"]:
            assert set(line) == {"reason", "amount", "count", "work_item_ids"}
            assert money(line["amount"]) == money(check["held"][line["reason"]])
    reasons = {v["reason"] for c in report["checks"] for v in c["variances"]}
    assert {"unmatched", "reversal orphan", "awaiting posting"} <= reasons
    assert set(report["totals"]) == TOTAL_KEYS | {"scope"}
    assert report["totals"]["checks"] == 2 and report["totals"]["unbalanced_checks"] == 0
    assert {t["payer"] for t in report["by_payer"]} == {"SMPBC", "SMPUH"}
    assert all(set(t) == TOTAL_KEYS | {"payer"} for t in report["by_payer"])
    assert [t["date"] for t in report["by_day"]] == ["2026-01-26"]


def test_one_check_and_an_unknown_one(database: str) -> None:
    result = reconcile(database, "--check", "UHCEFT00000037", "--json")
    assert result.exit_code == 0, result.output
    (check,) = json.loads(result.stdout)["checks"]
    assert check["trace"] == "UHCEFT00000037" and money(check["bpr02"]) == Decimal("15.14")
    assert money(check["held"]["reversal orphan"]) == Decimal("-340.74")

    missing = reconcile(database, "--check", "NOPE")
    assert missing.exit_code == 2
    assert "no check with trace number 'NOPE'" in missing.stderr
    assert "Traceback" not in missing.output


def test_an_unexplained_variance_exits_1_and_names_the_item(database: str) -> None:
    store = open_store(database)
    try:
        with store.sessions.begin() as session:
            item = session.scalars(
                select(WorkItem).where(
                    WorkItem.kind == "unmatched_remittance",
                    WorkItem.trace_number == "BCBEFT00000026",
                )
            ).one()
            update_work_item(
                session, item.id, expected_version=item.version, now=NOW,
                state="ignored", resolved_at=NOW,
            )  # fmt: skip
            item_id, amount = item.id, item.amount
    finally:
        store.dispose()

    result = reconcile(database, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["balanced"] is False and report["totals"]["unbalanced_checks"] == 1
    (bad,) = [c for c in report["checks"] if not c["balanced"]]
    assert bad["trace"] == "BCBEFT00000026" and money(bad["unexplained"]) == amount
    (line,) = [v for v in bad["variances"] if v["reason"] == "unexplained"]
    assert line["work_item_ids"] == [item_id] and money(line["amount"]) == amount

    table = reconcile(database)
    assert table.exit_code == 1
    assert "BCBEFT00000026" in table.stdout and "unexplained" in table.stdout
    assert f"items {item_id}" in table.stdout
    assert "1 with an unexplained variance" in table.stdout


def test_table_output_lists_each_check_and_its_reasons(database: str) -> None:
    result = reconcile(database)
    assert result.exit_code == 0, result.output
    for text in ("UHCEFT00000037", "BCBEFT00000026", "reversal orphan", "unmatched", "SMPUH"):
        assert text in result.stdout
    assert "2 check(s); all reconciled" in result.stdout


def test_status_json_carries_the_dashboard(database: str) -> None:
    result = runner.invoke(app, ["status", "--database", database, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["claim_payments"] == 9  # the keys that were there before are kept
    board = summary["dashboard"]
    assert set(board) >= {"stages", "outbox", "postings_per_minute", "adapters", "queues", "aging"}
    assert board["stages"]["remitted"]["count"] == 9
    assert money(board["stages"]["remitted"]["amount"]) == Decimal("3050.59")  # 3048.26 + 2.33
    assert board["outbox"]["depth"] > 0 and money(board["outbox"]["depth_amount"]) > 0
    assert board["queues"]["unmatched_remittance"]["count"] == 2
    assert len(board["postings_per_minute"]) == 30
    assert list(board["aging"]) == ["0-2 days", "3-7 days", "8-21 days", "over 21 days"]

    plain = runner.invoke(app, ["status", "--database", database])
    assert plain.exit_code == 0 and "Pipeline" in plain.stdout and "outbox:" in plain.stdout


def quarantine(database: str, tmp_path: Path, name: str, old: str, new: str) -> None:
    """Ingest a copy of a sample 835 with ``old`` replaced by ``new`` (a fatal finding)."""
    text = (SAMPLE_835 / f"{name}.x12").read_text()
    assert old in text
    path = tmp_path / f"bad-{name}.x12"
    path.write_text(text.replace(old, new, 1))
    result = runner.invoke(app, ["ingest", str(path), "--database", database])
    assert result.exit_code == 1, result.output  # quarantined


def test_quarantined_835_files_are_named_not_reconciled(database: str, tmp_path: Path) -> None:
    clean = reconcile(database, "--json")
    assert json.loads(clean.stdout)["quarantined_835"] == {
        "files": 0, "bpr02": "0.00", "unreadable": 0, "source_file_ids": [],
    }  # fmt: skip
    assert "quarantined" not in clean.stderr
    # two checks whose money is in no figure: a bad CLP04 each (their BPR02 reads fine)
    quarantine(database, tmp_path, "835_AET_RPG_0001", "*196.42*", "*X*")
    quarantine(database, tmp_path, "835_MCR_RPG_0001", "*35.15*", "*X*")

    table = reconcile(database)
    assert table.exit_code == 0, table.output  # a warning, not a failure
    line = (
        "2 quarantined 835 file(s) ($21,430.37) are not in these figures: see claimsync files list"
    )
    assert line in table.stderr
    assert "all reconciled" in table.stdout and line in " ".join(table.stdout.split())
    report = json.loads(reconcile(database, "--json").stdout)
    found = report["quarantined_835"]
    assert found["files"] == 2 and money(found["bpr02"]) == Decimal("21430.37")
    assert found["unreadable"] == 0 and len(found["source_file_ids"]) == 2
    assert report["balanced"] is True

    one = json.loads(reconcile(database, "--check", "UHCEFT00000037", "--json").stdout)
    assert one["quarantined_835"]["files"] == 0  # --check: only the files naming that trace
    only = reconcile(database, "--check", "70000013")
    assert only.exit_code == 2  # not loaded, but the message says where it is
    assert "no check with trace number '70000013'" in only.stderr
    assert "1 quarantined 835 file(s) ($18,069.62)" in only.stderr


def test_a_quarantined_835_whose_bpr02_is_unreadable_is_counted_without_an_amount(
    database: str, tmp_path: Path
) -> None:
    quarantine(database, tmp_path, "835_AET_RPG_0001", "BPR*I*18069.62*", "BPR*I*[/]*")
    result = reconcile(database)
    assert result.exit_code == 0
    assert "1 quarantined 835 file(s) (amount unreadable) are not in these figures" in (
        result.stderr
    )
    found = json.loads(reconcile(database, "--json").stdout)["quarantined_835"]
    assert found["files"] == 1 and found["unreadable"] == 1 and found["bpr02"] == "0.00"


def test_payer_text_in_the_table_is_not_markup(database: str) -> None:
    store = open_store(database)
    try:
        with store.sessions.begin() as session:
            session.execute(
                update(Remittance)
                .where(Remittance.trace_number == "UHCEFT00000037")
                .values(trace_number="[bold]UHC[/]")
            )
    finally:
        store.dispose()
    result = reconcile(database)
    assert result.exit_code == 0, result.output
    assert "[bold]UHC[/]" in result.stdout
