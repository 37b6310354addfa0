"""``claimsync console`` and ``claimsync demo``'s console hand-off, through typer's CliRunner
(no terminal there, so nothing interactive starts)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from claimsync_console.cli.app import app


def test_console_on_a_database_it_cannot_open_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["console", "--database", "nosuchdriver://nowhere/db"])
    assert result.exit_code == 2
    assert "cannot open the database" in result.output
    assert "Traceback" not in result.output


def test_console_on_a_missing_sqlite_file_refuses_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nodir" / "x.sqlite"
    result = CliRunner().invoke(app, ["console", "--database", f"sqlite:///{missing}"])
    assert result.exit_code == 2
    assert f"no database at {missing}" in result.output
    assert not missing.parent.exists()


def test_demo_without_a_terminal_prints_the_status(tmp_path: Path) -> None:
    from claimsync_console.engine.samplegen import generate

    generate(12, 3, tmp_path / "samples")
    result = CliRunner().invoke(
        app, ["demo", "--samples", str(tmp_path / "samples"), "--data-dir", str(tmp_path / "d")]
    )
    assert result.exit_code == 0, result.output
    assert "ClaimSync status" in result.output
