"""``claimsync sync run``: match, post by the rules, and drain the outbox into the ERP."""

from __future__ import annotations

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
from claimsync_console.cli.output import emit_json, printable, say


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
        problem = delivery_problem(store, settings.erp_adapter, result)
    if json_output:
        emit_json(result)
    else:
        for key, value in result.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            typer.echo(f"{key.replace('_', ' ')}: {shown}")
    if problem:
        say(problem)
    if close_error:
        fail(f"ERP adapter {settings.erp_adapter} did not close cleanly: {close_error}",
             EXIT_ERP_UNAVAILABLE)  # fmt: skip
    if result.get("breaker_blocked"):
        raise typer.Exit(EXIT_ERP_UNAVAILABLE)
    raise typer.Exit(EXIT_SOME_FAILED if result.get("dead") else EXIT_OK)


def delivery_problem(store: Any, adapter_name: str, result: dict[str, Any]) -> str:
    """One stderr line when the ERP took nothing: the breaker is open (exit 5), or every
    delivery tried failed. The counters alone on stdout never said why; the line names the
    adapter and the last error an attempt recorded. "" when nothing went wrong."""
    from claimsync_console.store.queries_outbox import last_failed_attempt

    failed = int(result.get("retried", 0)) + int(result.get("dead", 0))
    blocked = bool(result.get("breaker_blocked"))
    if not blocked and not (failed and not result.get("posted")):
        return ""
    with store.sessions() as session:
        last = last_failed_attempt(session)
    error = printable(last) if last else "none recorded"
    if blocked:
        retry_at = result.get("breaker_retry_at")
        when = f" until {retry_at}" if retry_at else ""
        return (
            f"ERP adapter {adapter_name}: circuit breaker open{when}, nothing delivered; "
            f"last error: {error}"
        )
    return (
        f"ERP adapter {adapter_name}: every delivery failed ({result.get('retried', 0)} to "
        f"retry, {result.get('dead', 0)} dead letter(s)); last error: {error}"
    )


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
            result[key] = _merged(result.get(key), value)
    return result


def _merged(before: Any, value: Any) -> Any:
    """Two workers' reports as one: flags or'ed, counters and amounts added, lists joined."""
    from decimal import Decimal

    if before is None:
        return value
    if isinstance(value, bool):
        return bool(before) or value
    if isinstance(value, int):
        return before + value
    if isinstance(value, list):
        return [*before, *value]
    if isinstance(value, str) and isinstance(before, str):
        try:  # an amount (a decimal string): added exactly, never through float
            return str(Decimal(before) + Decimal(value))
        except ArithmeticError:
            return value
    return value


def summary_dict(summary: Any) -> dict[str, Any]:
    """A summary dataclass, JSON-ready: counters and flags as they are, lists as JSON arrays,
    amounts as decimal strings, times as ISO UTC; a nested summary's fields are flattened as
    ``matching_matched``, ``posting_cash_enqueued``..."""
    from dataclasses import asdict, is_dataclass

    if not is_dataclass(summary):
        return {}
    out: dict[str, Any] = {}
    for key, value in asdict(summary).items():  # type: ignore[arg-type]
        if isinstance(value, dict):
            out.update({f"{key}_{k}": _jsonable(v) for k, v in value.items()})
        else:
            out[key] = _jsonable(value)
    return out


def _jsonable(value: Any) -> Any:
    from datetime import UTC, datetime

    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)  # Decimal: a decimal string, never a float
