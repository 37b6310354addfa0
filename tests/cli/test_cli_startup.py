"""What ``claimsync`` costs before it does anything, and shell completion.

Not a timing test (benchmarks/bench_cli_help.py measures ``claimsync --help``): a real guard
that the command modules keep their heavy imports inside the commands, checked in a fresh
interpreter so nothing a test imported earlier can hide a regression.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HEAVY = ("sqlalchemy", "textual", "httpx", "rich", "claimsync_console.store")
CLAIMSYNC = shutil.which("claimsync") or str(Path(sys.executable).parent / "claimsync")


def test_importing_the_app_imports_no_heavy_module() -> None:
    probe = (
        "import json, sys; import claimsync_console.cli.app; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == []


def test_help_renders_without_rich_or_the_store() -> None:
    """Typer's rich help renderer is off (``rich_markup_mode=None``): it imports rich and
    markdown-it, half of the 250 ms that ``claimsync --help`` may take."""
    probe = (
        "import json, sys\n"
        "from claimsync_console.cli.app import main\n"
        "sys.argv = ['claimsync', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Usage: claimsync" in done.stdout and "items" in done.stdout
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


def test_every_command_of_the_issue_is_registered() -> None:
    from typer.main import get_command

    from claimsync_console.cli.app import app

    root = get_command(app)
    names = set(root.commands)  # type: ignore[attr-defined]
    assert {"status", "retry", "remap", "approve", "write-off", "reverse", "ignore", "ingest",
            "reconcile", "items", "audit", "rules", "sync"} <= names  # fmt: skip
    groups = {
        "items": {"list", "show"}, "audit": {"list", "export", "verify"}, "rules": {"check"},
        "sync": {"run"},
    }  # fmt: skip
    for group, commands in groups.items():
        assert commands <= set(root.commands[group].commands)  # type: ignore[attr-defined]


def test_bash_completion_script_and_completions() -> None:
    script = subprocess.run(
        [CLAIMSYNC, "--show-completion", "bash"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "complete -o default -F _claimsync_completion claimsync" in script.stdout
    env = {**os.environ, "_CLAIMSYNC_COMPLETE": "complete_bash"}
    for words, cword, expected in (("claimsync au", "1", "audit"), ("claimsync items l", "2",
                                   "list"), ("claimsync audit v", "2", "verify")):  # fmt: skip
        done = subprocess.run(
            [CLAIMSYNC], capture_output=True, text=True, timeout=60, check=False,
            env={**env, "COMP_WORDS": words, "COMP_CWORD": cword},
        )  # fmt: skip
        assert done.stdout.split() == [expected], (words, done.stdout, done.stderr)
