"""``claimsync rules check FILE``: validate a posting-rules file before it goes live.

Every problem is printed the way compilers do (``FILE:LINE: message``), so editors and CI logs
link straight to the line. Exit 0 when the file is valid, 1 when it is not, 2 when it cannot be
read at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from claimsync_console.cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    JsonOption,
    fail,
    friendly_errors,
)

rules_app = typer.Typer(help="Check posting-rules files.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    rules_app.command("check")(check)
    app.add_typer(rules_app, name="rules")


@friendly_errors
def check(
    path: Annotated[Path, typer.Argument(help="A posting-rules TOML file.", show_default=False)],
    json_output: JsonOption = False,
) -> None:
    """Validate a posting-rules file; print each problem as FILE:LINE: message."""
    from claimsync_console.cli.output import emit_json
    from claimsync_console.engine.rules import RulesError, parse_rules

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {getattr(error, 'strerror', None) or error}")
    try:
        book = parse_rules(text, source=str(path))
    except RulesError as error:
        problems = [{"line": p.line, "message": p.message} for p in error.problems]
        if json_output:
            emit_json({"file": str(path), "valid": False, "problems": problems, "summary": None})
        else:
            for problem in problems:
                where = f"{path}:{problem['line']}" if problem["line"] else str(path)
                typer.echo(f"{where}: {problem['message']}")
        typer.echo(f"claimsync: {path}: {len(problems)} problem(s)", err=True)
        raise typer.Exit(EXIT_SOME_FAILED) from None
    summary = _summary(book)
    if json_output:
        emit_json({"file": str(path), "valid": True, "problems": [], "summary": summary})
    else:
        counts = ", ".join(f"{n} {what}" for what, n in summary.items() if what != "digest")
        typer.echo(f"{path}: valid ({counts})")
    raise typer.Exit(EXIT_OK)


def _summary(book: Any) -> dict[str, Any]:
    return {
        "payers": len(book.payers),
        "facilities": len(book.facilities),
        "adjustments": len(book.adjustments),
        "plb": len(book.plb),
        "write_offs": len(book.write_offs),
        "approval_rules": len(book.approvals),
        "digest": book.digest,
    }
