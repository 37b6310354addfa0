"""Shared CLI plumbing: options every command takes, settings, and clear errors.

Heavy modules (SQLAlchemy, the readers) are imported inside functions so that
``claimsync --help`` does not pay for them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from claimsync_console.settings import Settings, SettingsError, load_settings, sqlite_file

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from claimsync_console.engine.runtime import Store

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_PERMISSION = 4
EXIT_ERP_UNAVAILABLE = 5

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (default: CLAIMSYNC_DATABASE_URL, else SQLite in the data folder).",
        show_default=False,
    ),
]
OperatorOption = Annotated[
    str | None,
    typer.Option(
        "--operator",
        help="Who is acting (default: CLAIMSYNC_OPERATOR, else the OS user).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")]

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print a clear message (never a traceback) on stderr and exit."""
    typer.echo(f"claimsync: {message}", err=True)
    raise typer.Exit(code)


def settings_for(database: str | None = None, operator: str | None = None) -> Settings:
    try:
        return load_settings(database_url=database, operator=operator)
    except SettingsError as error:
        fail(f"configuration error: {error}")


def require_database(url: str) -> None:
    """Exit 2 when ``url`` names an SQLite file that is not there. Opening it would create an
    empty database (and its folder), so a typo in ``--database`` would read as "no items" with
    exit 0; only the commands that load data (``init``, ``ingest``, ``demo``) may create one.
    Other databases are servers: a wrong URL fails on connecting, with its own message."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        fail(
            f"no database at {path} "
            "(run 'claimsync init' or check --database / CLAIMSYNC_DATABASE_URL)"
        )


def open_cli_store(settings: Settings, *, create: bool = False) -> Store:
    """The configured store, migrated; a missing SQLite file is refused unless ``create``.
    For a command that holds the store beyond one ``with`` block (the acting commands)."""
    from claimsync_console.engine.runtime import open_store

    url = settings.resolved_database_url
    if not create:
        require_database(url)
    return open_store(url)


@contextmanager
def opened_store(settings: Settings, *, create: bool = False) -> Iterator[Store]:
    """The command's store, disposed of however the command ends (pooled connections close).
    Only a command that loads data passes ``create=True`` (see ``require_database``)."""
    store = open_cli_store(settings, create=create)
    try:
        yield store
    finally:
        store.dispose()


@contextmanager
def store_session(database: str | None) -> Iterator[Session]:
    """One session on the configured (or given) database, for commands that only read (a
    missing SQLite file is refused, never created)."""
    with opened_store(settings_for(database)) as store, store.sessions() as session:
        yield session


def _save_traceback() -> str:
    """Keep the traceback for the engineers in a file instead of on the operator's screen.
    Readable by this user only (an exception's message can quote a file's content, and the
    temporary folder is shared); the folder is per user, so another user's cannot block it."""
    import getpass
    import os
    import tempfile
    import traceback
    from datetime import UTC, datetime
    from pathlib import Path

    folder = Path(tempfile.gettempdir()) / f"claimsync-errors-{getpass.getuser()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"error-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.txt"
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(traceback.format_exc())
    return str(path)


def friendly_errors(command: F) -> F:
    """Turn the errors an operator can cause into messages and exit codes."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from claimsync_console.engine.runtime import StoreUnavailableError

        try:
            return command(*args, **kwargs)
        except StoreUnavailableError as error:
            fail(str(error))
        except SettingsError as error:
            fail(f"configuration error: {error}")
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:
            sys.stderr.close()
            raise typer.Exit(EXIT_OK) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as error:  # the operator gets a message, not a traceback
            where = _save_traceback()
            fail(f"unexpected error: {error.__class__.__name__}: {error} (details: {where})", 1)

    return wrapper  # type: ignore[return-value]
