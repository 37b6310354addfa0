"""``claimsync files list|show|release`` through CliRunner, on a real store (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from claimsync_console.cli.app import app
from tests.x12.corpus import CORPUS_DIR

MANAGED_CARE = (
    CORPUS_DIR / "LinuxForHealth__x12/src__tests__resources__835_005010X221A1__managed-care.835"
)
NOT_X12 = CORPUS_DIR / "albmarin__badX12/tests__files__errors__bad_file.edi"

pytestmark = pytest.mark.skipif(not MANAGED_CARE.exists(), reason="x12 corpus not present")

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def as_json(database: str, *args: str) -> Any:
    result = run(*args, "--database", database, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def resent(db_url: str, tmp_path: Path) -> tuple[str, int]:
    """The store with managed-care.835 loaded and a re-send of it (one TRN changed, and a
    ``[bold]`` in the name to prove no markup is read) quarantined; returns (url, its id)."""
    assert run("ingest", str(MANAGED_CARE), "--database", db_url).exit_code == 0
    again = tmp_path / "[bold]resent.835"
    again.write_bytes(MANAGED_CARE.read_bytes().replace(b"TRN*1*7170066655", b"TRN*1*7170066656"))
    result = run("ingest", str(again), "--database", db_url, "--json")
    assert result.exit_code == 1, result.output
    (row,) = as_json(db_url, "files", "list")
    return db_url, int(row["id"])


def test_list_shows_the_resent_file_with_its_finding(resent: tuple[str, int]) -> None:
    database, file_id = resent
    (row,) = as_json(database, "files", "list")
    assert row["id"] == file_id
    assert set(row) == {"id", "name", "kind", "received_at", "status", "finding"}
    assert row["status"] == "quarantined" and row["kind"] == "835"
    assert row["name"].endswith("[bold]resent.835")
    assert row["finding"]["code"] == "resent-interchange"
    assert row["finding"]["segment_index"] == 1
    assert "already loaded" in row["finding"]["message"]
    assert len(as_json(database, "files", "list", "--status", "all")) == 2
    (loaded,) = as_json(database, "files", "list", "--status", "loaded")
    assert loaded["finding"] is None or loaded["finding"]["code"] != "resent-interchange"

    table = runner.invoke(app, ["files", "list", "--database", database], env={"COLUMNS": "500"})
    assert table.exit_code == 0
    assert "[bold]resent.835" in table.stdout and "resent-interchange" in table.stdout
    bad = run("files", "list", "--status", "nope", "--database", database)
    assert bad.exit_code == 2


def test_show_has_every_finding(resent: tuple[str, int]) -> None:
    database, file_id = resent
    detail = as_json(database, "files", "show", str(file_id))
    assert detail["id"] == file_id and detail["releasable"] is True
    assert detail["release_blocked_by"] is None
    assert "resent-interchange" in {f["code"] for f in detail["findings"]}
    assert len(detail["findings"]) >= 2  # the file's own findings too (a bad date)
    text = run("files", "show", str(file_id), "--database", database)
    assert text.exit_code == 0 and "[bold]resent.835" in text.stdout
    assert run("files", "show", "999", "--database", database).exit_code == 2


def test_release_loads_it_and_audits_it(resent: tuple[str, int]) -> None:
    database, file_id = resent
    before = as_json(database, "status")["claim_payments"]

    result = run(
        "files", "release", str(file_id), "--note", "corrected TRN, payer confirmed",
        "--yes", "--operator", "ana", "--database", database, "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    released = json.loads(result.stdout)
    assert released["status"] == "loaded" and released["claim_payments"] == 2
    assert released["paid_total"] == "945.00"
    assert as_json(database, "status")["claim_payments"] == before + 2
    assert as_json(database, "files", "list") == []
    assert as_json(database, "files", "show", str(file_id))["status"] == "loaded"
    (row,) = as_json(database, "audit", "list")["rows"]
    assert row["action"] == "release_file" and row["target"] == f"file:{file_id}"
    assert row["operator"] == "ana" and row["note"] == "corrected TRN, payer confirmed"
    assert row["work_item_id"] is None
    assert row["id"] == released["audit_id"]
    verify = run("audit", "verify", "--database", database)
    assert verify.exit_code == 0 and "intact" in verify.stdout

    twice = run("files", "release", str(file_id), "--note", "again", "--yes",
                "--database", database)  # fmt: skip
    assert twice.exit_code == 3 and "not quarantined" in twice.stderr
    assert len(as_json(database, "audit", "list")["rows"]) == 1
    assert as_json(database, "status")["claim_payments"] == before + 2


def test_release_of_a_parse_error_is_refused(db_url: str) -> None:
    assert run("ingest", str(NOT_X12), "--database", db_url).exit_code == 1
    (row,) = as_json(db_url, "files", "list")
    result = run("files", "release", str(row["id"]), "--note", "try", "--yes",
                 "--database", db_url)  # fmt: skip
    assert result.exit_code == 2
    assert "cannot release" in result.stderr and "parse error cannot be released" in result.stderr
    assert row["finding"]["code"] in result.stderr
    assert as_json(db_url, "files", "show", str(row["id"]))["status"] == "quarantined"
    assert as_json(db_url, "audit", "list")["rows"] == []


def test_release_needs_a_note_and_yes_off_a_terminal(resent: tuple[str, int]) -> None:
    database, file_id = resent
    blank = run("files", "release", str(file_id), "--note", " ", "--yes", "--database", database)
    assert blank.exit_code == 2
    no_yes = run("files", "release", str(file_id), "--note", "ok", "--database", database)
    assert no_yes.exit_code == 2 and "--yes" in no_yes.stderr
    assert as_json(database, "files", "show", str(file_id))["status"] == "quarantined"


def test_a_missing_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'none.sqlite'}"
    assert run("files", "list", "--database", url).exit_code == 2
    assert not (tmp_path / "none.sqlite").exists()
