"""The ingest, status, sample and demo commands, through typer's CliRunner."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from claimsync_console.cli.app import app
from tests.x12.corpus import CORPUS_DIR

MANAGED_CARE = (
    CORPUS_DIR / "LinuxForHealth__x12/src__tests__resources__835_005010X221A1__managed-care.835"
)
NOT_X12 = CORPUS_DIR / "albmarin__badX12/tests__files__errors__bad_file.edi"

runner = CliRunner()


@pytest.fixture
def database(db_url: str) -> str:
    return db_url


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def json_lines(output: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_ingest_json_shape_then_duplicate(database: str) -> None:
    first = run("ingest", str(MANAGED_CARE), "--database", database, "--json")
    assert first.exit_code == 0, first.output
    (row,) = json_lines(first.stdout)
    assert set(row) >= {
        "file",
        "sha256",
        "status",
        "kind",
        "claims",
        "claim_payments",
        "paid_total",
        "findings",
    }
    assert row["status"] == "loaded" and row["kind"] == "835"
    assert row["claim_payments"] == 2
    assert Decimal(row["paid_total"]) == Decimal("945.00")
    assert isinstance(row["paid_total"], str)
    again = run("ingest", str(MANAGED_CARE), "--database", database, "--json")
    assert again.exit_code == 0
    assert json_lines(again.stdout)[0]["status"] == "duplicate"


def test_quarantined_file_exits_1_with_its_finding(database: str) -> None:
    result = run("ingest", str(NOT_X12), "--database", database, "--json")
    assert result.exit_code == 1
    (row,) = json_lines(result.stdout)
    assert row["status"] == "quarantined"
    finding = row["findings"][0]
    assert list(finding) == ["severity", "file", "segment_index", "segment_id", "code", "message"]
    assert finding["file"] == row["file"] == str(NOT_X12)  # docs/cli.md: each finding's file
    assert finding["severity"] == "fatal"
    assert finding["segment_index"] == 1
    assert "not X12" in finding["message"]


def test_table_output_names_the_quarantine_reason(tmp_path: Path) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'db.sqlite'}"
    result = run("ingest", str(NOT_X12), "--database", url)
    assert result.exit_code == 1
    assert "quarantined" in result.stdout
    assert "segment 1" in result.stderr and "not X12" in result.stderr


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'db.sqlite'}"
    result = run("ingest", str(tmp_path / "nope.835"), "--database", url)
    assert result.exit_code == 2
    assert "no such file" in result.stderr
    assert "Traceback" not in result.output


def test_status_json_names_every_file_and_acknowledgement_status(database: str) -> None:
    """docs/cli.md promises the keys: 0 when none, so a script never checks for a key."""
    assert run("init", "--database", database).exit_code == 0
    empty = run("status", "--database", database, "--json")
    assert empty.exit_code == 0, empty.output
    summary = json.loads(empty.stdout)
    assert summary["files"] == {"received": 0, "loaded": 0, "duplicate": 0, "quarantined": 0}
    assert summary["acknowledgements"] == {"accepted": 0, "rejected": 0, "pending": 0, "other": 0}
    assert run("ingest", str(NOT_X12), "--database", database).exit_code == 1
    files = json.loads(run("status", "--database", database, "--json").stdout)["files"]
    assert files == {"received": 0, "loaded": 0, "duplicate": 0, "quarantined": 1}


def test_bad_database_url_is_a_clear_error() -> None:
    result = run("status", "--database", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert result.exit_code == 2
    assert "cannot open the database" in result.stderr
    assert "Traceback" not in result.output


def test_environment_variable_selects_the_database(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite+pysqlite:///{tmp_path / 'env.sqlite'}"
    monkeypatch.setenv("CLAIMSYNC_DATABASE_URL", url)
    assert run("ingest", str(MANAGED_CARE)).exit_code == 0
    status = run("status", "--json")
    assert status.exit_code == 0
    assert json.loads(status.stdout)["claim_payments"] == 2
    assert (tmp_path / "env.sqlite").exists()


def test_sample_generate_then_demo(tmp_path: Path) -> None:
    out = tmp_path / "samples"
    generated = run("sample", "generate", "--claims", "40", "--seed", "3", "--out", str(out))
    assert generated.exit_code == 0, generated.output
    manifest = json.loads((out / "manifest.json").read_text())
    demo = run("demo", "--samples", str(out), "--data-dir", str(tmp_path / "demo"))
    assert demo.exit_code == 0, demo.output
    loaded = len(manifest["files"])
    assert f"loaded {loaded} of {loaded} sample files" in demo.stdout
    status = run(
        "status",
        "--json",
        "--database",
        f"sqlite+pysqlite:///{tmp_path / 'demo' / 'claimsync.sqlite'}",
    )
    summary = json.loads(status.stdout)
    counts = manifest["counts"]
    billed = sum(counts.get(k, 0) for k in ("claims_837I", "claims_837P", "replacement_claims"))
    assert summary["claims"] == billed
    assert summary["claim_payments"] == counts["claim_payments"]
    assert summary["files"] == {"received": 0, "loaded": loaded, "duplicate": 0, "quarantined": 0}
    assert set(summary["acknowledgements"]) == {"accepted", "rejected", "pending", "other"}
