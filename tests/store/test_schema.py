"""The schema comes only from migrations, and it matches the models exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from claimsync_console.store.db import current_revision, make_engine, upgrade_to_head
from claimsync_console.store.models import Base

EXPECTED_TABLES = {
    "file_blobs",
    "source_files",
    "remittances",
    "claim_payments",
    "service_payments",
    "adjustments",
    "provider_adjustments",
    "claims",
    "service_lines",
    "claim_statuses",
    # engine tables (migration 0002)
    "work_items",
    "payment_matches",
    "claim_acks",
    "outbox",
    "posting_attempts",
    "audit_log",
    "adapter_health",
    # operator actions (migration 0003)
    "triage_actions",
}
#: The queue search index (migration 0006) is raw SQL the models do not describe: on SQLite an
#: FTS5 table and its shadow tables, on PostgreSQL a pg_trgm index (see test_queue_search.py).
SEARCH_INDEX_NAMES = ("work_items_search", "ix_work_items_search")


def _not_search_index(name: str | None, *_: object) -> bool:
    return not (name or "").startswith(SEARCH_INDEX_NAMES)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from claimsync_console.store.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_migrations_create_every_table_and_match_the_models(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        tables = {t for t in inspect(connection).get_table_names() if _not_search_index(t)}
        opts = {"compare_type": True, "include_name": _not_search_index}
        context = MigrationContext.configure(connection, opts=opts)
        diff = compare_metadata(context, Base.metadata)
    assert tables == EXPECTED_TABLES | {"alembic_version"}
    assert diff == []
    assert current_revision(migrated_engine) == head_revision()


def test_matching_indexes_exist(migrated_engine: Engine) -> None:
    inspector = inspect(migrated_engine)

    def indexed(table: str) -> set[tuple[str, ...]]:
        return {tuple(str(c) for c in ix["column_names"]) for ix in inspector.get_indexes(table)}

    assert ("patient_control_number", "payer_identifier") in indexed("claims")
    assert ("patient_control_number",) in indexed("claim_payments")
    assert ("payer_claim_control_number",) in indexed("claim_payments")
    assert ("trace_number",) in indexed("remittances")
    assert ("sender_id", "interchange_control_number") in indexed("source_files")


def test_upgrade_is_idempotent_and_accepts_a_url(db_url: str) -> None:
    upgrade_to_head(db_url)
    upgrade_to_head(db_url)
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= EXPECTED_TABLES
    finally:
        engine.dispose()


def test_models_alone_create_nothing(db_url: str) -> None:
    """Only migrations create tables: a fresh engine on an empty database sees none."""
    engine = make_engine(db_url)
    try:
        assert inspect(engine).get_table_names() == []
        assert current_revision(engine) is None
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [("journal_mode", "wal"), ("foreign_keys", 1), ("busy_timeout", 30000)],
)
def test_sqlite_connections_get_the_pragmas(tmp_path: Path, pragma: str, expected: object) -> None:
    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text(f"PRAGMA {pragma}")).scalar() == expected
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_every_table(migrated_engine: Engine) -> None:
    from alembic import command

    from claimsync_console.store.db import alembic_config

    config = alembic_config()
    with migrated_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(migrated_engine).get_table_names()) <= {"alembic_version"}
    upgrade_to_head(migrated_engine)  # and back up again
    assert set(inspect(migrated_engine).get_table_names()) >= EXPECTED_TABLES
