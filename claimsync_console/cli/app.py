"""The ``claimsync`` command. Each command module registers itself on ``app``."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="claimsync",
    help="ClaimSync: keep X12 claims, acknowledgements and remittances in step with the ERP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
sample_app = typer.Typer(help="Generate sample X12 data.", no_args_is_help=True)
app.add_typer(sample_app, name="sample")


def _register() -> None:
    from claimsync_console.cli import demo_cmd, ingest_cmd, sample_cmd, status_cmd

    ingest_cmd.register(app)
    status_cmd.register(app)
    demo_cmd.register(app)
    sample_cmd.register(sample_app)


_register()


def main() -> None:
    app()
