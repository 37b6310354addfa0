"""Shared fixtures: a database URL for each backend, migrated engines and session factories.

``db_url`` runs a test once on SQLite (a file under tmp_path) and once on PostgreSQL. The
PostgreSQL run gets its own schema (dropped afterwards) through ``search_path``, so tests never
see each other's rows. Without a server the PostgreSQL run is skipped, saying why, unless
CLAIMSYNC_REQUIRE_POSTGRES=1 (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.store.db import make_engine, session_factory, upgrade_to_head

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("CLAIMSYNC_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _postgres_unavailable_reason(url: str) -> str | None:
    """None when the server answers; otherwise why the PostgreSQL tests are skipped."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    from sqlalchemy.engine import make_url

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {make_url(url).render_as_string()} did not answer: {exc}"


_PG_STATE: dict[str, str | None] = {}


def _postgres_skip_reason() -> str | None:
    if "reason" not in _PG_STATE:
        _PG_STATE["reason"] = _postgres_unavailable_reason(postgres_base_url())
    return _PG_STATE["reason"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database (no tables) on each backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "claimsync.sqlite3"
        yield f"sqlite+pysqlite:///{path}"
        return
    reason = _postgres_skip_reason()
    if reason is not None:
        if os.environ.get("CLAIMSYNC_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CLAIMSYNC_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    yield from _postgres_schema_url(postgres_base_url())


def _postgres_schema_url(base_url: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = make_engine(base_url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in base_url else "?"
        yield f"{base_url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def migrated_engine(db_url: str) -> Iterator[Engine]:
    """An engine whose database has been upgraded to the newest migration."""
    engine = make_engine(db_url)
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db_sessions(migrated_engine: Engine) -> sessionmaker[Session]:
    """A session factory on a migrated database, for code that opens its own transactions."""
    return session_factory(migrated_engine)
