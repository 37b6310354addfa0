"""``claimsync init`` and ``claimsync ingest``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from claimsync_console.cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    DatabaseOption,
    JsonOption,
    fail,
    friendly_errors,
    opened_store,
    settings_for,
)

if TYPE_CHECKING:
    from claimsync_console.engine.ingest import IngestResult


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("ingest")(ingest)


@friendly_errors
def init(database: DatabaseOption = None) -> None:
    """Create or upgrade the database schema."""
    from claimsync_console.engine.runtime import redact_url

    with opened_store(settings_for(database), create=True) as store:
        pass  # opening creates or upgrades the schema
    typer.echo(f"database ready: {redact_url(store.url)}")


@friendly_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="X12 files, or folders to read recursively.")],
    database: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Load 835, 837P/837I and 277CA files. Duplicates are skipped; bad files are quarantined."""
    from claimsync_console.engine.ingest import IngestPathError, ingest_paths

    with opened_store(settings_for(database), create=True) as store:
        try:
            results = ingest_paths(store.sessions, paths)
        except IngestPathError as error:
            fail(str(error))
    if json_output:
        for result in results:
            typer.echo(json.dumps(result_json(result)))
    else:
        print_results(results)
    quarantined = any(r.status == "quarantined" for r in results)
    raise typer.Exit(EXIT_SOME_FAILED if quarantined else EXIT_OK)


def result_json(result: IngestResult) -> dict[str, object]:
    """One file's JSON line (docs/cli.md). Each finding names its file too: a script that
    gathers the findings of a whole drop folder (``jq '.findings[]'``) still knows where each
    one came from."""
    out = result.to_json()
    out["findings"] = [
        {"severity": f.get("severity"), "file": result.file, **f} for f in result.findings
    ]
    return out


def print_results(results: list[IngestResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    from claimsync_console.cli.output import wide_when_piped

    table = Table(title="ingest", show_lines=False)
    for column in ("file", "status", "kind", "claims", "payments", "paid", "findings"):
        table.add_column(
            column, justify="right" if column in ("claims", "payments", "paid") else "left"
        )
    for result in results:
        table.add_row(
            Path(result.file).name,
            result.status,
            result.kind,
            str(result.claims),
            str(result.claim_payments),
            str(result.paid_total),
            str(len(result.findings)),
        )
    wide_when_piped().print(table)
    errors = Console(stderr=True)
    for result in results:
        if result.status != "quarantined":
            continue
        fatal = [f for f in result.findings if f.get("severity") == "fatal"] or list(
            result.findings
        )
        for finding in fatal[:3]:
            errors.print(
                f"[red]quarantined[/red] {result.file}: segment {finding.get('segment_index')} "
                f"({finding.get('segment_id') or '-'}): {finding.get('message')}",
                markup=True,
                highlight=False,
            )
