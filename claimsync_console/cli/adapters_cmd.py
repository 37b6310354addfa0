"""``claimsync adapters list`` and ``claimsync adapters check NAME``.

``check`` validates the configuration first (exit 2 when it is wrong: nothing was sent), then
asks the adapter's health probe (exit 5 when the ERP does not answer well). Secrets are shown
masked, always: the options table comes from ``redacted_settings``.
"""

from __future__ import annotations

import json
import warnings
from typing import Annotated, Any

import typer

from claimsync_console.cli.common import (
    EXIT_ERP_UNAVAILABLE,
    EXIT_OK,
    EXIT_USAGE,
    DatabaseOption,
    JsonOption,
    fail,
    friendly_errors,
    settings_for,
)

adapters_app = typer.Typer(help="List and check the ERP adapters.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    adapters_app.command("list")(list_adapters)
    adapters_app.command("check")(check)
    app.add_typer(adapters_app, name="adapters")


def _discover() -> tuple[dict[str, Any], list[str]]:
    """Installed adapters, and one line per plugin that was skipped (never a crash)."""
    from claimsync_console.erp.registry import available_adapters

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adapters = available_adapters()
    return adapters, [str(w.message) for w in caught]


def _describe(name: str, adapter_class: Any) -> dict[str, Any]:
    from dataclasses import asdict

    from claimsync_console.erp.adapter_config import env_name

    return {
        "name": name,
        "class": f"{adapter_class.__module__}:{adapter_class.__qualname__}",
        "capabilities": asdict(adapter_class.capabilities),
        "options": [
            {
                "name": opt.name,
                "type": opt.type.__name__,
                "secret": opt.secret,
                "required": opt.required,
                "default": None if opt.secret else opt.default,
                "env": env_name(name, opt.name),
                "help": opt.help,
            }
            for opt in adapter_class.options
        ],
    }


@friendly_errors
def list_adapters(json_output: JsonOption = False) -> None:
    """Installed ERP adapters, their capabilities and options."""
    adapters, skipped = _discover()
    described = [_describe(name, cls) for name, cls in adapters.items()]
    for message in skipped:
        typer.echo(f"warning: {message}", err=True)
    if json_output:
        typer.echo(json.dumps({"adapters": described, "skipped": skipped}, indent=2))
        return
    for item in described:
        flags = [k.removeprefix("supports_") for k, v in item["capabilities"].items() if v is True]
        typer.echo(f"{item['name']}  ({item['class']})  {', '.join(flags)}")
        for opt in item["options"]:
            marks = "secret" if opt["secret"] else ("required" if opt["required"] else "")
            shown = "" if opt["default"] in (None, "") else f" [default: {opt['default']}]"
            typer.echo(f"    {opt['name']:<18} {opt['type']:<5} {marks:<8} {opt['help']}{shown}")


@friendly_errors
def check(
    name: Annotated[str, typer.Argument(help="Adapter name, as `adapters list` shows it.")],
    database: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Validate NAME's configuration, then run its health check (exit 0 ok, 2 config, 5 down)."""
    from claimsync_console.erp.adapter_config import configured_options
    from claimsync_console.erp.base import AdapterConfigError

    adapters, skipped = _discover()
    for message in skipped:
        typer.echo(f"warning: {message}", err=True)
    if name not in adapters:
        fail(f"no ERP adapter named {name!r}; installed: {', '.join(adapters) or 'none'}")
    adapter_class = adapters[name]
    try:
        options = configured_options(adapter_class, name)
        if name == "ledger" and not options.get("path"):
            # The ledger `sync run` posts to: `ledger_path`, else next to the database.
            options["path"] = str(settings_for(database).resolved_ledger_path)
        adapter = adapter_class(options)
    except AdapterConfigError as error:
        fail(f"adapter {name}: configuration error: {error}", EXIT_USAGE)
    try:
        health = adapter.health()
        settings = adapter.redacted_settings()
    finally:
        adapter.close()
    report = {"adapter": name, "ok": health.ok, "detail": health.detail,
              "latency_ms": round(health.latency * 1000, 1), "options": settings}  # fmt: skip
    if json_output:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"{name}: {'ok' if health.ok else 'UNAVAILABLE'}: {health.detail} "
                   f"({report['latency_ms']} ms)")  # fmt: skip
        for key, value in settings.items():
            typer.echo(f"    {key} = {value}")
    raise typer.Exit(EXIT_OK if health.ok else EXIT_ERP_UNAVAILABLE)
