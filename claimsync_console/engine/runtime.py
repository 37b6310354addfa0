"""Opening the store the way every entry point needs it: engine, migrations, session factory.

The CLI, the console and the benchmarks all start here, so there is one place where a
database URL becomes a migrated, ready-to-use store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.erp.base import ErpAdapter
from claimsync_console.store.db import make_engine, session_factory, upgrade_to_head


class StoreUnavailableError(RuntimeError):
    """The database cannot be opened or migrated; the message says which and why."""


@dataclass(frozen=True)
class Store:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    def dispose(self) -> None:
        self.engine.dispose()


def redact_url(url: str) -> str:
    """A URL safe to print: the password, if any, is hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


POSTGRES_EXTRA_HINT = (
    "PostgreSQL needs the postgres extra: pip install 'claimsync-console[postgres]' "
    "(from a checkout: pip install -e '.[postgres]')"
)


def _missing_driver(url: str, error: ImportError) -> StoreUnavailableError:
    """A database driver that is not installed is a set-up step, not a crash: say which."""
    module = error.name or str(error)
    if module.split(".")[0] in ("psycopg", "psycopg2") or url.startswith("postgres"):
        return StoreUnavailableError(f"{POSTGRES_EXTRA_HINT} (no module {module!r})")
    return StoreUnavailableError(
        f"cannot open the database {redact_url(url)}: its driver is not installed "
        f"(no module {module!r})"
    )


def open_store(url: str, *, migrate: bool = True) -> Store:
    """A store at ``url``, migrated to the newest schema unless ``migrate`` is False. Only
    creating the engine imports the driver, so only there is an ImportError a missing driver
    (one raised by a migration would be a bug, and stays one)."""
    try:
        try:
            engine = make_engine(url)
        except ImportError as error:
            raise _missing_driver(url, error) from error
        if migrate:
            upgrade_to_head(engine)
    except (SQLAlchemyError, OSError, ValueError) as error:
        raise StoreUnavailableError(
            f"cannot open the database {redact_url(url)}: {error.__class__.__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from error
    return Store(url=url, engine=engine, sessions=session_factory(engine))


def open_adapter(name: str, ledger_path: Path, *, today: date | None = None) -> ErpAdapter:
    """The configured ERP adapter. A new embedded ledger gets the default chart of accounts and
    open periods for last, this and next year, so the demo and first runs post at once."""
    from claimsync_console.erp.adapter_config import create_configured_adapter
    from claimsync_console.erp.ledger import LedgerAdapter

    if name != "ledger":
        return create_configured_adapter(name)  # options: [adapters.NAME] and environment
    adapter = LedgerAdapter({"path": str(ledger_path)})
    year = (today or datetime.now(UTC).date()).year
    if adapter.entry_count() == 0:
        adapter.bootstrap_chart(year=year)
        for other in (year - 1, year + 1):
            adapter.open_year(other)
    return adapter
