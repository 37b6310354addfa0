"""``claimsync rules check FILE``: 0 valid, 1 invalid (each problem as FILE:LINE), 2 unreadable."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from claimsync_console.cli.app import app
from claimsync_console.engine.rules import sample_rules_path

runner = CliRunner()


def check(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["rules", "check", *args])
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_the_sample_rules_are_valid() -> None:
    path = str(sample_rules_path())
    code, out, _ = check(path)
    assert code == 0 and out.startswith(f"{path}: valid (") and "payers" in out
    code, out, _ = check(path, "--json")
    report = json.loads(out)
    assert code == 0 and report["valid"] is True and report["problems"] == []
    assert report["summary"]["payers"] > 0 and len(report["summary"]["digest"]) >= 16


def test_each_problem_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text("# rules\n[payers.X]\nreceivable = 12.5\n")
    code, out, err = check(str(bad))
    assert code == 1 and f"{bad}:3: 12.5 is not an account code" in out
    assert "problem(s)" in err
    code, out, _ = check(str(bad), "--json")
    report = json.loads(out)
    assert code == 1 and report["valid"] is False and report["summary"] is None
    assert {"line": 3, "message": "12.5 is not an account code, for payer X"} in report["problems"]


def test_a_toml_syntax_error_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text("a = [\n")
    code, out, _ = check(str(bad))
    assert code == 1 and "not valid TOML" in out


def test_a_file_that_cannot_be_read_is_a_usage_error(tmp_path: Path) -> None:
    binary = tmp_path / "rules.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    for path in (tmp_path / "missing.toml", binary, tmp_path):
        code, out, err = check(str(path))
        assert code == 2 and out == "" and f"cannot read {path}" in err
