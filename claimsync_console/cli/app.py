"""The ``claimsync`` command. Each command module registers itself on ``app``."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="claimsync",
    help="ClaimSync: keep X12 claims, acknowledgements and remittances in step with the ERP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    # Plain help and usage errors: rich's help renderer imports rich and markdown-it (~100 ms),
    # too much of the 250 ms that `claimsync --help` may take (benchmarks/bench_cli_help.py).
    rich_markup_mode=None,
)
sample_app = typer.Typer(help="Generate sample X12 data.", no_args_is_help=True)
sync_app = typer.Typer(help="Post to the ERP.", no_args_is_help=True)
app.add_typer(sample_app, name="sample")
app.add_typer(sync_app, name="sync")


def _register() -> None:
    from claimsync_console.cli import (
        actions_cmd,
        adapters_cmd,
        audit_cmd,
        console_cmd,
        demo_cmd,
        files_cmd,
        ingest_cmd,
        items_cmd,
        reconcile_cmd,
        rules_cmd,
        sample_cmd,
        sandbox_cmd,
        status_cmd,
        sync_cmd,
    )

    ingest_cmd.register(app)
    files_cmd.register(app)
    status_cmd.register(app)
    demo_cmd.register(app)
    reconcile_cmd.register(app)
    sample_cmd.register(sample_app)
    sync_cmd.register(sync_app)
    items_cmd.register(app)
    actions_cmd.register(app)
    audit_cmd.register(app)
    rules_cmd.register(app)
    adapters_cmd.register(app)
    sandbox_cmd.register(app)
    console_cmd.register(app)


_register()


def main() -> None:
    app()
