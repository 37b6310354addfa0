"""An unexpected error: one line for the operator, the traceback in a file only they can read."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest
import typer

from claimsync_console.cli.common import friendly_errors


def test_a_crash_is_one_line_and_a_private_traceback_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    @friendly_errors
    def command() -> None:
        raise RuntimeError("payer said [/b] HOC0000166")

    with pytest.raises(typer.Exit) as exited:
        command()
    assert exited.value.exit_code == 1
    said = capsys.readouterr().err.strip()
    assert said.startswith("claimsync: unexpected error: RuntimeError") and "\n" not in said
    (folder,) = tmp_path.glob("claimsync-errors-*")
    (report,) = folder.iterdir()
    assert str(report) in said
    assert "Traceback" in report.read_text() and "RuntimeError" in report.read_text()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
