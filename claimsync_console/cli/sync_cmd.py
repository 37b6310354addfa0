"""``claimsync sync run``: match, post by the rules, and drain the outbox into the ERP."""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

import typer

from claimsync_console.cli.common import (
    EXIT_ERP_UNAVAILABLE,
    EXIT_OK,
    EXIT_SOME_FAILED,
    DatabaseOption,
    JsonOption,
    fail,
    friendly_errors,
    opened_store,
    settings_for,
)


def register(app: typer.Typer) -> None:
    app.command("run")(run)


@friendly_errors
def run(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=16, help="Worker threads.")] = 1,
    database: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Match payments, turn them into journal entries, and post them to the ERP."""
    from claimsync_console.engine.rules import RulesError, load_rules

    settings = settings_for(database)
    try:
        rules = load_rules(settings.resolved_rules_path)
    except (RulesError, OSError) as error:
        fail(f"posting rules: {error}")
    with opened_store(settings) as store:
        adapter = _adapter(settings)
        try:
            result = (
                sync_once(store, adapter, rules)
                if once
                else sync_forever(store, adapter, rules, workers)
            )
        finally:
            close_error = _close(adapter)
    if json_output:
        typer.echo(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            typer.echo(f"{key.replace('_', ' ')}: {value}")
    if close_error:
        fail(f"ERP adapter {settings.erp_adapter} did not close cleanly: {close_error}",
             EXIT_ERP_UNAVAILABLE)  # fmt: skip
    if result.get("breaker_blocked"):
        raise typer.Exit(EXIT_ERP_UNAVAILABLE)
    raise typer.Exit(EXIT_SOME_FAILED if result.get("dead") else EXIT_OK)


def _adapter(settings: Any) -> Any:
    """The ERP adapter, or exit 5 when the ERP cannot even be opened (a ledger file that is
    unreadable or not a ledger): that is the ERP being unavailable, not a crash. A wrong
    adapter name or option is a configuration error (exit 2)."""
    import sqlite3

    from claimsync_console.engine.runtime import open_adapter
    from claimsync_console.erp.base import AdapterConfigError, ErpError
    from claimsync_console.erp.registry import UnknownAdapterError

    try:
        return open_adapter(settings.erp_adapter, settings.resolved_ledger_path)
    except (AdapterConfigError, UnknownAdapterError) as error:
        fail(f"configuration error: ERP adapter {settings.erp_adapter}: {error}")
    except (ErpError, sqlite3.Error, OSError) as error:
        fail(f"ERP unavailable ({settings.erp_adapter}): {error}", EXIT_ERP_UNAVAILABLE)


def _close(adapter: Any) -> str:
    """Let the adapter finish its work: the batch-file adapter seals its last, short batch
    here, and without this those entries would wait for the next run. Returns the error, if
    any, so the report is still printed before the exit status says it went wrong."""
    import sqlite3

    from claimsync_console.erp.base import ErpError

    close = getattr(adapter, "close", None)
    if not callable(close):
        return ""
    try:
        close()
    except (ErpError, sqlite3.Error, OSError) as error:
        return str(error) or type(error).__name__
    return ""


def sync_once(store: Any, adapter: Any, rules: Any) -> dict[str, Any]:
    from claimsync_console.engine.pipeline import process_all
    from claimsync_console.engine.worker import drain

    processed = process_all(store.sessions, rules)
    report = drain(store.sessions, adapter, worker_id="cli-1", once=True)
    return {**summary_dict(processed), **summary_dict(report)}


def sync_forever(store: Any, adapter: Any, rules: Any, workers: int) -> dict[str, Any]:
    """Process, then keep draining with ``workers`` threads until Ctrl+C."""
    from claimsync_console.engine.pipeline import process_all
    from claimsync_console.engine.worker import run as run_worker

    processed = process_all(store.sessions, rules)
    stop = threading.Event()
    reports: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda n=n: reports.append(
                run_worker(store.sessions, adapter, worker_id=f"cli-{n}", stop_event=stop)
            ),
            daemon=True,
        )
        for n in range(1, workers + 1)
    ]
    for thread in threads:
        thread.start()
    typer.echo(f"syncing with {workers} worker(s); Ctrl+C stops", err=True)
    try:
        while any(t.is_alive() for t in threads):
            threads[0].join(0.5)
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join()
    result = summary_dict(processed)
    for report in reports:
        for key, value in summary_dict(report).items():
            result[key] = result.get(key, 0) + value if isinstance(value, int) else value
    return result


def summary_dict(summary: Any) -> dict[str, Any]:
    """Counters of a summary dataclass, JSON-ready."""
    from dataclasses import asdict, is_dataclass

    if not is_dataclass(summary):
        return {}
    out: dict[str, Any] = {}
    for key, value in asdict(summary).items():  # type: ignore[arg-type]
        if isinstance(value, bool | int | str) or value is None:
            out[key] = value
        elif isinstance(value, dict):
            out.update({f"{key}_{k}": v for k, v in value.items() if isinstance(v, int | str)})
        else:
            out[key] = str(value)
    return out
