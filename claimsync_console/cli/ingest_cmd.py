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


#: Longest ``segment_id`` a finding reports. X12 segment ids are 2 or 3 characters; binary
#: garbage read as one "segment" once gave an id of megabytes, in every line of the report.
SEGMENT_ID_MAX = 16
#: Findings that quarantine a file even though they are not fatal (engine/ingest.py).
SHOWN_REASONS = 3


def result_json(result: IngestResult) -> dict[str, object]:
    """One file's JSON line (docs/cli.md). Each finding names its file too: a script that
    gathers the findings of a whole drop folder (``jq '.findings[]'``) still knows where each
    one came from. Text stays as the file had it (JSON escapes control characters); only a
    ``segment_id`` longer than SEGMENT_ID_MAX is cut, ending in ``…``."""
    out = result.to_json()
    out["findings"] = [
        {
            "severity": f.get("severity"),
            "file": result.file,
            **f,
            "segment_id": _segment_id(f.get("segment_id")),
        }
        for f in result.findings
    ]
    return out


def _segment_id(value: object) -> object:
    if isinstance(value, str) and len(value) > SEGMENT_ID_MAX:
        return value[: SEGMENT_ID_MAX - 1] + "…"
    return value


def print_results(results: list[IngestResult]) -> None:
    """The table, then each quarantined file's reasons on stderr. Everything from the file
    (its name, a segment id, a finding's message) is plain text, never rich markup (a ``[/]``
    in a segment crashed the report, ``[bold]`` vanished), and its control characters are
    shown escaped (``\\x1b``), never sent to the terminal."""
    from rich.console import Console
    from rich.text import Text

    from claimsync_console.cli.output import print_table, printable
    from claimsync_console.engine.quarantine import quarantine_reasons

    print_table(
        "ingest",
        ("file", "status", "kind", "claims", "payments", "paid", "findings"),
        (
            (Path(r.file).name, r.status, r.kind, r.claims, r.claim_payments, r.paid_total,
             len(r.findings))
            for r in results
        ),
        right=("claims", "payments", "paid"),
    )  # fmt: skip
    errors = Console(stderr=True, markup=False, highlight=False)
    for result in results:
        if result.status != "quarantined":
            continue
        reasons = quarantine_reasons(result.findings)
        for finding in reasons[:SHOWN_REASONS]:
            segment_id = printable(str(_segment_id(finding.get("segment_id")) or "-"))
            line = (
                f" {printable(result.file)}: segment {finding.get('segment_index')} "
                f"({segment_id}): {printable(str(finding.get('message')))}"
            )
            errors.print(Text.assemble(("quarantined", "red"), line), soft_wrap=True)
        if len(reasons) > SHOWN_REASONS:
            more = len(reasons) - SHOWN_REASONS
            errors.print(
                Text(f"  (+{more} more finding(s): claimsync ingest --json lists them all)"),
                soft_wrap=True,
            )
