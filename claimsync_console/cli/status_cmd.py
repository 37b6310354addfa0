"""``claimsync status``: what the store holds, and the dashboard's figures."""

from __future__ import annotations

from typing import Any

import typer

from claimsync_console.cli.common import (
    DatabaseOption,
    JsonOption,
    friendly_errors,
    store_session,
)


def register(app: typer.Typer) -> None:
    app.command("status")(status)


@friendly_errors
def status(database: DatabaseOption = None, json_output: JsonOption = False) -> None:
    """Show files, claims and payments in the store, the pipeline stages and the queues."""
    from datetime import UTC, datetime

    from claimsync_console.engine.status import dashboard, dashboard_json, store_summary

    with store_session(database) as session:
        summary = store_summary(session)
        board = dashboard_json(dashboard(session, now=datetime.now(UTC)))
    if json_output:
        from claimsync_console.cli.output import emit_json

        emit_json({**summary, "dashboard": board})
        return
    print_summary(summary)
    print_dashboard(board)


def print_summary(summary: dict[str, object]) -> None:
    from rich.table import Table

    from claimsync_console.cli.output import wide_when_piped

    table = Table(title="ClaimSync status")
    table.add_column("what")
    table.add_column("count / amount", justify="right")
    for key, value in summary.items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                table.add_row(f"{key}: {sub}", str(sub_value))
        else:
            table.add_row(key.replace("_", " "), str(value))
    wide_when_piped(markup=False).print(table)


def print_dashboard(board: dict[str, Any]) -> None:
    """The JSON-ready dashboard (``engine.status.dashboard_json``) as three small tables."""
    from rich.table import Table

    from claimsync_console.cli.output import wide_when_piped

    console = wide_when_piped(markup=False, highlight=False)  # adapter names are data, not markup
    stages = Table(title="Pipeline")
    for name in ("stage", "count", "amount"):
        stages.add_column(name, justify="left" if name == "stage" else "right")
    for stage, figures in board["stages"].items():
        stages.add_row(stage.replace("_", " "), str(figures["count"]), figures["amount"])
    console.print(stages)

    queues = Table(title="Open work items")
    labels = list(board["aging"])
    for name in ("queue", "count", "amount", *labels):
        queues.add_column(name, justify="left" if name == "queue" else "right")
    for kind, tile in board["queues"].items():
        aging = board["aging_by_queue"].get(kind, {})
        counts = [str(aging.get(label, {}).get("count", 0)) for label in labels]
        queues.add_row(kind.replace("_", " "), str(tile["count"]), tile["amount"], *counts)
    console.print(queues)

    outbox = board["outbox"]
    age = outbox["oldest_age_seconds"]
    console.print(
        f"outbox: {outbox['depth']} waiting ({outbox['depth_amount']}), "
        f"oldest {'-' if age is None else f'{age}s'}, {outbox['dead']} dead; "
        f"postings in the last {len(board['postings_per_minute'])} min: "
        f"{sum(board['postings_per_minute'])}"
    )
    for adapter in board["adapters"]:
        console.print(
            f"adapter {adapter['adapter']}: circuit {adapter['circuit_state']}, "
            f"p50 {adapter['p50_ms']} ms, p95 {adapter['p95_ms']} ms, "
            f"last success {adapter['last_success_at'] or 'never'}"
        )
