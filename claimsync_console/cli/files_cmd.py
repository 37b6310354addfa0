"""``claimsync files list|show|release``: the quarantine, and the analyst's way out of it.

Thin: the rules (what may be released, the one transaction with its audit row) live in
engine/quarantine.py. Everything a file says (names, finding messages) is printed as plain
text, never as rich markup, and with control characters made visible.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from claimsync_console.cli.common import (
    EXIT_USAGE,
    DatabaseOption,
    JsonOption,
    OperatorOption,
    fail,
    friendly_errors,
    opened_store,
    settings_for,
    store_session,
)

if TYPE_CHECKING:
    from claimsync_console.engine.runtime import Store

files_app = typer.Typer(
    help="List quarantined files, show their findings, release a re-sent one.",
    no_args_is_help=True,
)

STATUS_CHOICES = ("quarantined", "loaded", "received", "duplicate", "all")


def register(app: typer.Typer) -> None:
    app.add_typer(files_app, name="files")
    files_app.command("list")(list_files)
    files_app.command("show")(show_file)
    files_app.command("release")(release_file)


@friendly_errors
def list_files(
    status: Annotated[
        str,
        typer.Option("--status", help="quarantined (default), loaded, received, duplicate or all."),
    ] = "quarantined",
    database: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """List received files (default: the quarantined ones) with the finding that explains each."""
    from claimsync_console.engine import quarantine

    if status not in STATUS_CHOICES:
        fail(f"--status must be one of {', '.join(STATUS_CHOICES)}, got {status!r}")
    with store_session(database) as session:
        rows = quarantine.list_files(session, None if status == "all" else status)
    if json_output:
        from claimsync_console.cli.output import emit_json

        emit_json(rows)
        return
    from claimsync_console.cli.output import print_table

    print_table(
        f"Files ({status})",
        ["id", "name", "kind", "received", "status", "finding"],
        (
            [r["id"], r["name"], r["kind"], r["received_at"], r["status"], _brief(r["finding"])]
            for r in rows
        ),
        right=["id"],
        caption=f"{len(rows)} file(s)",
    )


def _brief(finding: dict[str, object] | None) -> str:
    if finding is None:
        return ""
    return f"{finding['code']} @ segment {finding['segment_index']}: {finding['message']}"


@friendly_errors
def show_file(
    file_id: Annotated[int, typer.Argument(help="The file's id (from files list).")],
    database: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Everything about one file, with all its findings."""
    from claimsync_console.engine import quarantine

    with store_session(database) as session:
        try:
            detail = quarantine.file_detail(session, file_id)
        except quarantine.FileNotFoundInStoreError as error:
            fail(str(error))
    if json_output:
        from claimsync_console.cli.output import emit_json

        emit_json(detail)
        return
    from claimsync_console.cli.output import print_table, printable

    for key, value in detail.items():
        if key not in ("findings", "finding"):
            typer.echo(f"{key}: {printable('' if value is None else str(value))}")
    print_table(
        "Findings",
        ["severity", "segment", "id", "code", "message"],
        (
            [f.get(k) for k in ("severity", "segment_index", "segment_id", "code", "message")]
            for f in detail["findings"]
        ),
        right=["segment"],
    )


@friendly_errors
def release_file(
    file_id: Annotated[int, typer.Argument(help="The quarantined file's id.")],
    note: Annotated[
        str, typer.Option("--note", help="Why this file is released (goes to the audit trail).")
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    database: DatabaseOption = None,
    operator: OperatorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Load a file quarantined only as a re-sent interchange, and audit who decided and why."""
    from claimsync_console.engine import quarantine

    if not note.strip():
        fail("--note must say why the file is released")
    settings = settings_for(database, operator)
    with opened_store(settings) as store:
        if not yes:
            _confirm(store, file_id)
        try:
            released = quarantine.release_file(
                store.sessions,
                file_id,
                operator=settings.resolved_operator,
                role=settings.role,
                note=note,
            )
        except quarantine.FileNotFoundInStoreError as error:
            fail(str(error))
        except quarantine.ReleaseRefusedError as error:
            fail(f"cannot release: {error}", error.code)
    if json_output:
        from claimsync_console.cli.output import emit_json

        emit_json(released.to_json())
        return
    typer.echo(
        f"released file {released.source_file_id} ({released.kind}): {released.claims} claims, "
        f"{released.claim_payments} claim payments ({released.paid_total}), "
        f"{released.claim_statuses} claim statuses loaded; audit row {released.audit_id}"
    )


def _confirm(store: Store, file_id: int) -> None:
    """Without ``--yes`` a terminal is asked; a script must say ``--yes``."""
    if not sys.stdin.isatty():
        fail("release needs --yes when not run on a terminal", EXIT_USAGE)
    from claimsync_console.cli.output import printable
    from claimsync_console.engine import quarantine

    with store.sessions() as session:
        try:
            detail = quarantine.file_detail(session, file_id)
        except quarantine.FileNotFoundInStoreError as error:
            fail(str(error))
    typer.echo(f"file {file_id}: {printable(str(detail['name']))} ({detail['kind']})")
    if not typer.confirm("Load this file?", default=False):
        raise typer.Abort
