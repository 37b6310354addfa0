"""``claimsync sync run --once`` posts the sample set into the embedded ledger."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from claimsync_console.cli.app import app
from claimsync_console.engine.samples import sample_files
from claimsync_console.erp.base import PermanentErpError, TransientErpError
from claimsync_console.erp.ledger import LedgerAdapter

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLAIMSYNC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CLAIMSYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("CLAIMSYNC_CONFIG", raising=False)
    return tmp_path


def test_sync_once_posts_and_a_second_run_posts_nothing(env: Path) -> None:
    files = [str(p) for p in sample_files(SAMPLE)]
    assert runner.invoke(app, ["ingest", *files]).exit_code == 0
    first = runner.invoke(app, ["sync", "run", "--once", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["posted"] > 250 and report["dead"] == 0
    ledger = LedgerAdapter({"path": str(env / "ledger.sqlite")})
    assert ledger.entry_count() == report["posted"]
    assert sum(ledger.trial_balance().values(), Decimal(0)) == 0
    second = runner.invoke(app, ["sync", "run", "--once", "--json"])
    assert json.loads(second.stdout)["posted"] == 0
    assert ledger.entry_count() == report["posted"]


def test_bad_rules_file_is_a_usage_error(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = env / "rules.toml"
    bad.write_text("[payers.X]\nreceivable = 12.5\n")
    monkeypatch.setenv("CLAIMSYNC_RULES_PATH", str(bad))
    result = runner.invoke(app, ["sync", "run", "--once"])
    assert result.exit_code == 2
    assert "posting rules" in result.stderr and "rules.toml" in result.stderr
    assert "Traceback" not in result.output


def test_sync_run_closes_the_adapter_so_the_batch_file_adapter_seals_its_last_batch(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbound = env / "outbound"
    outbound.mkdir()  # the importer's folder: the adapter never creates it
    monkeypatch.setenv("CLAIMSYNC_ERP_ADAPTER", "batchfile")
    monkeypatch.setenv("CLAIMSYNC_ADAPTER_BATCHFILE_OUTBOUND", str(outbound))
    monkeypatch.setenv("CLAIMSYNC_ADAPTER_BATCHFILE_BATCH_SIZE", "100000")  # never full
    files = [str(p) for p in sample_files(SAMPLE)]
    assert runner.invoke(app, ["ingest", *files]).exit_code == 0
    result = runner.invoke(app, ["sync", "run", "--once", "--json"])
    assert result.exit_code == 0, result.output
    posted = json.loads(result.stdout)["posted"]
    assert posted > 250
    # The one short batch was sealed by close(): manifest last, every posting in its file.
    [manifest] = sorted(outbound.glob("*.manifest.json"))
    [jsonl] = sorted(outbound.glob("*.jsonl"))
    assert json.loads(manifest.read_text())  # complete JSON, written after the data files
    assert len(jsonl.read_text().splitlines()) == posted


def test_an_unknown_erp_adapter_is_a_usage_error(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0  # sync run needs a database
    monkeypatch.setenv("CLAIMSYNC_ERP_ADAPTER", "no-such-erp")
    result = runner.invoke(app, ["sync", "run", "--once"])
    assert result.exit_code == 2
    assert "no ERP adapter named 'no-such-erp'" in result.stderr
    assert "ledger" in result.stderr  # the installed ones are listed
    assert "Traceback" not in result.output


def test_bad_adapter_options_are_a_usage_error(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMSYNC_ERP_ADAPTER", "batchfile")  # its `outbound` is required
    monkeypatch.delenv("CLAIMSYNC_ADAPTER_BATCHFILE_OUTBOUND", raising=False)
    assert runner.invoke(app, ["init"]).exit_code == 0
    result = runner.invoke(app, ["sync", "run", "--once"])
    assert result.exit_code == 2
    assert "configuration error" in result.stderr and "outbound" in result.stderr
    assert "Traceback" not in result.output


class FailingLedger(LedgerAdapter):
    """The embedded ledger, refusing every posting with ``error``."""

    error: type[Exception] = PermanentErpError

    def post_entry(self, entry):  # type: ignore[no-untyped-def]
        raise self.error("account 9999 is not in the chart \x1b[2J")

    def post_each(self, entries):  # type: ignore[no-untyped-def]
        return [self.error("account 9999 is not in the chart \x1b[2J") for _ in entries]


def failing(monkeypatch: pytest.MonkeyPatch, env: Path, error: type[Exception]) -> None:
    files = [str(p) for p in sample_files(SAMPLE) if "RPG" in p.name]
    assert runner.invoke(app, ["ingest", *files]).exit_code in (0, 1)
    FailingLedger.error = error
    monkeypatch.setattr(
        "claimsync_console.cli.sync_cmd._adapter",
        lambda settings: FailingLedger({"path": str(env / "ledger.sqlite")}),
    )


def test_every_delivery_failing_says_why_on_stderr(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing(monkeypatch, env, PermanentErpError)
    result = runner.invoke(app, ["sync", "run", "--once", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["posted"] == 0 and report["dead"] > 0
    assert isinstance(report["dead_letter_ids"], list)  # a JSON array, not "[89, 90]"
    assert all(isinstance(i, int) for i in report["dead_letter_ids"])
    assert len(report["dead_letter_ids"]) == report["dead"]
    assert "ERP adapter ledger: every delivery failed" in result.stderr
    assert "last error: [permanent] account 9999 is not in the chart \\x1b[2J" in result.stderr
    text = runner.invoke(app, ["sync", "run", "--once"])  # nothing left to deliver: quiet
    assert text.exit_code == 0 and text.stderr == ""


def test_an_open_breaker_exits_5_and_says_so_on_stderr(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing(monkeypatch, env, TransientErpError)
    result = runner.invoke(app, ["sync", "run", "--once"])
    assert result.exit_code == 5, result.output
    assert "ERP adapter ledger: circuit breaker open" in result.stderr
    assert "last error: [transient] account 9999" in result.stderr
    assert "\x1b" not in result.output
