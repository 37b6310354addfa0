"""Queue free-text search: an index over the text a queue filter looks in.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

A queue's free-text filter ("contains, in the claim number, trace number, payer name, payer id
or error") had no index, so a rare word read the whole table (2.5 s at 1M work items). The
searchable fields are exactly those five; no PHI (patient names, member ids) is indexed.

* SQLite: an FTS5 table with the trigram tokenizer, external content (the text stays in
  ``work_items``; the index holds trigrams and row ids only, ``detail=none``, about 70 bytes a
  row), kept current by triggers on insert, delete and update of those columns, and filled
  from the existing rows here (backfill). It also indexes ``kind``, never searched, so a
  lookup can be narrowed to one queue (text common elsewhere, absent from this queue).
* PostgreSQL: a pg_trgm GIN index on the five fields joined by a newline (an analyst's filter
  is one line, so a match never spans two fields). ``pg_trgm`` is created if missing (in
  ``public`` when it exists, so dropping a schema never drops it); when the role may not create
  it, the index is skipped and the filter still works, unindexed.

Both must stay in step with ``store/queue_search.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy import Connection, text

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)

COLUMNS = ("patient_control_number", "trace_number", "payer_name", "payer_id", "error")
FTS = "work_items_search"
FTS_COLUMNS = (*COLUMNS, "kind")
PG_INDEX = "ix_work_items_search_trgm"
PG_EXPRESSION = " || E'\\n' || ".join(COLUMNS)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite_upgrade()
    elif bind.dialect.name == "postgresql":
        _postgres_upgrade(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for suffix in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {FTS}_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {FTS}")
    elif bind.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")


def _sqlite_upgrade() -> None:
    cols = ", ".join(FTS_COLUMNS)
    new = ", ".join(f"new.{c}" for c in FTS_COLUMNS)
    old = ", ".join(f"old.{c}" for c in FTS_COLUMNS)
    op.execute(
        f"CREATE VIRTUAL TABLE {FTS} USING fts5({cols}, content='work_items', "
        "content_rowid='id', tokenize='trigram', detail='none', columnsize=0)"
    )
    op.execute(
        f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON work_items BEGIN "
        f"INSERT INTO {FTS}(rowid, {cols}) VALUES (new.id, {new}); END"
    )
    op.execute(
        f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON work_items BEGIN "
        f"INSERT INTO {FTS}({FTS}, rowid, {cols}) VALUES ('delete', old.id, {old}); END"
    )
    op.execute(
        f"CREATE TRIGGER {FTS}_update AFTER UPDATE OF {cols} ON work_items BEGIN "
        f"INSERT INTO {FTS}({FTS}, rowid, {cols}) VALUES ('delete', old.id, {old}); "
        f"INSERT INTO {FTS}(rowid, {cols}) VALUES (new.id, {new}); END"
    )
    op.execute(f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')")  # backfill the existing rows


def _postgres_upgrade(bind: Connection) -> None:
    schema = _trgm_schema(bind)
    if schema is None:
        log.warning("pg_trgm is not available: queue free-text filters stay unindexed")
        return
    opclass = f'"{schema}".gin_trgm_ops'
    op.execute(
        f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON work_items "
        f"USING gin (({PG_EXPRESSION}) {opclass})"
    )


def _trgm_schema(bind: Connection) -> str | None:
    """The schema pg_trgm lives in, creating it when this role may; None when it may not."""
    found = bind.scalar(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
            "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
        )
    )
    if found is not None:
        return str(found)
    public = bind.scalar(text("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'"))
    create = "CREATE EXTENSION IF NOT EXISTS pg_trgm" + (" SCHEMA public" if public else "")
    try:
        with bind.begin_nested():
            bind.execute(text(create))
    except Exception as error:  # noqa: BLE001 - no privilege or no contrib package: go unindexed
        log.warning("could not create pg_trgm: %s", error)
        return None
    return _trgm_schema(bind)
