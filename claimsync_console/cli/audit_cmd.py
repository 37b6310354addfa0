"""``claimsync audit list|export|verify``: the operator actions' hash-chained trail.

``list`` is for reading (a table, newest rows last, ``--limit``); ``export`` is for keeping
(every selected row, CSV by default or JSON Lines, with ``prev_hash`` and ``hash`` so the export
can be checked on its own); ``verify`` walks the whole chain and names the first row that does not
check out (exit 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from claimsync_console.cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    DatabaseOption,
    JsonOption,
    fail,
    friendly_errors,
    store_session,
)
from claimsync_console.cli.items_cmd import CsvOption

if TYPE_CHECKING:
    from claimsync_console.engine.audit_export import AuditFilter

audit_app = typer.Typer(help="Read, export and verify the audit trail.", no_args_is_help=True)

SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="From this instant: a duration back (2h, 3d) or an ISO date or date-time (UTC).",
        show_default=False,
    ),
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until", help="Before this instant (same forms).", show_default=False),
]
ItemOption = Annotated[
    int | None, typer.Option("--item", help="Only this work item's rows.", show_default=False)
]
ByOption = Annotated[
    str | None, typer.Option("--by", help="Only this operator's rows.", show_default=False)
]


def register(app: typer.Typer) -> None:
    audit_app.command("list")(list_audit)
    audit_app.command("export")(export_audit)
    audit_app.command("verify")(verify_audit)
    app.add_typer(audit_app, name="audit")


def audit_filter(
    since: str | None, until: str | None, item: int | None, by: str | None
) -> AuditFilter:
    from datetime import UTC

    from claimsync_console.cli.output import parse_instant
    from claimsync_console.engine.audit_export import AuditFilter

    now = datetime.now(UTC)
    start = parse_instant(since, now, "--since") if since else None
    end = parse_instant(until, now, "--until") if until else None
    if start is not None and end is not None and end <= start:
        fail("--until must be after --since")
    return AuditFilter(since=start, until=end, work_item_id=item, operator=by)


@friendly_errors
def list_audit(
    since: SinceOption = None,
    until: UntilOption = None,
    item: ItemOption = None,
    by: ByOption = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="At most N rows (the oldest).")
    ] = 200,
    database: DatabaseOption = None,
    json_output: JsonOption = False,
    csv_output: CsvOption = False,
) -> None:
    """Show audit rows, oldest first."""
    from claimsync_console.cli.output import emit_csv, emit_json, output_format, say
    from claimsync_console.engine.audit_export import AUDIT_COLUMNS

    fmt = output_format(json_output, csv_output)
    wanted = audit_filter(since, until, item, by)
    rows = read_rows(database, wanted, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    if fmt == "json":
        emit_json({"count": len(rows), "more": more, "rows": rows})
    elif fmt == "csv":
        emit_csv(AUDIT_COLUMNS, rows)
    else:
        print_rows(rows)
    if more:
        say(f"more rows match: raise --limit (now {limit}), narrow --since, or use audit export")


def read_rows(database: str | None, wanted: AuditFilter, limit: int | None) -> list[dict[str, Any]]:
    from claimsync_console.engine.audit_export import audit_rows

    with store_session(database) as session:
        return list(audit_rows(session, wanted, limit=limit))


def print_rows(rows: list[dict[str, Any]]) -> None:
    from claimsync_console.cli.output import print_table, short_time, shorten

    print_table(
        "audit (UTC)",
        ("id", "at", "operator", "action", "item", "state", "target", "reason", "note"),
        (
            (r["id"], short_time(r["at"]), f"{r['operator']} ({r['role']})", r["action"],
             r["work_item_id"], _states(r), r["target"], r["reason"], shorten(r["note"], 40))
            for r in rows
        ),
        right=("id", "item"),
        caption=f"{len(rows)} row(s)",
    )  # fmt: skip


def _states(row: dict[str, Any]) -> str:
    before = (row.get("before") or {}).get("state")
    after = (row.get("after") or {}).get("state")
    return f"{before} → {after}" if before and after and before != after else after or ""


@friendly_errors
def export_audit(
    since: SinceOption = None,
    until: UntilOption = None,
    item: ItemOption = None,
    by: ByOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write to this file instead of stdout.", show_default=False),
    ] = None,
    database: DatabaseOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="JSON Lines (one object per row) instead of CSV.")
    ] = False,
    csv_output: CsvOption = False,
) -> None:
    """Export every selected audit row (CSV, or JSON Lines with --json), in chain order."""
    from claimsync_console.cli.output import emit_csv, emit_json_lines, output_format, say
    from claimsync_console.engine.audit_export import AUDIT_COLUMNS, audit_rows

    fmt = output_format(json_output, csv_output)
    wanted = audit_filter(since, until, item, by)
    with store_session(database) as session, _target(out) as file:
        rows = audit_rows(session, wanted)
        if fmt == "json":
            count = emit_json_lines(rows, file)
        else:
            count = emit_csv(AUDIT_COLUMNS, rows, file)
    if out is not None:
        say(f"exported {count} audit row(s) to {out}")


@contextmanager
def _target(path: Path | None) -> Iterator[IO[str] | None]:
    """The file to export into, or None for stdout."""
    if path is None:
        yield None
        return
    try:
        handle = path.open("w", encoding="utf-8", newline="")
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}")
    with handle:
        yield handle


@friendly_errors
def verify_audit(
    database: DatabaseOption = None,
    json_output: JsonOption = False,
    head: Annotated[
        str | None,
        typer.Option(
            "--head", help="A head hash printed by an earlier verify: it must still be there."
        ),
    ] = None,
) -> None:
    """Check the audit trail's hash chain; exit 1 and name the first broken row if it fails."""
    from claimsync_console.cli.output import emit_json
    from claimsync_console.engine.audit_export import verify

    with store_session(database) as session:
        check = verify(session, known_head=head)
    if json_output:
        emit_json(check.to_json())
    elif check.intact:
        typer.echo(f"audit chain intact: {check.rows} row(s); head {check.head or '-'}")
    if check.intact:
        raise typer.Exit(EXIT_OK)
    row = check.first_broken
    message = (
        f"audit chain broken at row {row.get('id')} ({row.get('at')}, {row.get('operator')},"
        f" {row.get('action')} on work item {row.get('work_item_id')}): {check.why}"
        if row is not None
        else f"audit trail incomplete: {check.why}"
    )
    if not json_output:
        typer.echo(message)
    typer.echo(f"claimsync: {message}", err=True)
    raise typer.Exit(EXIT_SOME_FAILED)
