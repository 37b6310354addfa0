"""``claimsync status``: what the store holds."""

from __future__ import annotations

import json

import typer

from claimsync_console.cli.common import DatabaseOption, JsonOption, friendly_errors, settings_for


def register(app: typer.Typer) -> None:
    app.command("status")(status)


@friendly_errors
def status(database: DatabaseOption = None, json_output: JsonOption = False) -> None:
    """Show files, claims and payments in the store."""
    from claimsync_console.engine.runtime import open_store
    from claimsync_console.engine.status import store_summary

    settings = settings_for(database)
    store = open_store(settings.resolved_database_url)
    try:
        with store.sessions() as session:
            summary = store_summary(session)
    finally:
        store.dispose()
    if json_output:
        typer.echo(json.dumps(summary, indent=2))
        return
    print_summary(summary)


def print_summary(summary: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ClaimSync status")
    table.add_column("what")
    table.add_column("count / amount", justify="right")
    for key, value in summary.items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                table.add_row(f"{key}: {sub}", str(sub_value))
        else:
            table.add_row(key.replace("_", " "), str(value))
    Console().print(table)
