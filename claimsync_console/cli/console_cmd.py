"""``claimsync console``: the operator console on the configured (or given) database.

The operator comes from ``--operator``, else CLAIMSYNC_OPERATOR, else the OS user; the role
from the configuration. Textual is imported only here, when the console is asked for.
"""

from __future__ import annotations

import typer

from claimsync_console.cli.common import (
    DatabaseOption,
    OperatorOption,
    fail,
    friendly_errors,
    require_database,
    settings_for,
)
from claimsync_console.settings import Settings


def register(app: typer.Typer) -> None:
    app.command("console")(console)


@friendly_errors
def console(database: DatabaseOption = None, operator: OperatorOption = None) -> None:
    """Open the triage console: live dashboard, work queues, item detail and actions."""
    settings = settings_for(database, operator)
    require_database(settings.resolved_database_url)  # a typo must not open an empty store
    open_console(settings)


def open_console(settings: Settings) -> None:
    """Run the console until the operator quits (shared with ``claimsync demo``)."""
    from claimsync_console.console.app import ClaimSyncApp
    from claimsync_console.engine.console_backend import ConsoleBackend
    from claimsync_console.engine.triage import UsageError

    try:
        backend = ConsoleBackend.open(settings)
    except UsageError as error:
        fail(error.message)
    try:
        ClaimSyncApp(backend).run()
    finally:
        backend.close()
