"""Money is exact integer cents on both backends; times come back aware and in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, StatementError

from claimsync_console.store.db import make_engine
from claimsync_console.store.models import FileBlob, SourceFile
from claimsync_console.store.types import (
    DecimalText,
    Money,
    MoneyPrecisionError,
    UTCDateTime,
    from_cents,
    to_cents,
)

AMOUNTS = [Decimal("0.10"), Decimal("0.20"), Decimal("0.07")] * 3000  # 9000 rows, 1110.00


Scratch = tuple[Engine, Table]


@pytest.fixture
def scratch(db_url: str) -> Iterator[Scratch]:
    """A throwaway table (not part of the schema) to exercise the column types alone."""
    engine = make_engine(db_url)
    metadata = MetaData()
    table = Table(
        "scratch",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("money", Money),
        Column("at", UTCDateTime),
        Column("qty", DecimalText),
    )
    metadata.create_all(engine)
    yield engine, table
    engine.dispose()


def test_to_cents_rejects_float_and_sub_cent() -> None:
    assert to_cents(Decimal("12.34")) == 1234
    assert to_cents(Decimal("-0.07")) == -7
    assert to_cents(Decimal("5")) == 500
    assert from_cents(1234) == Decimal("12.34")
    with pytest.raises(MoneyPrecisionError, match="float"):
        to_cents(0.1)  # type: ignore[arg-type]
    with pytest.raises(MoneyPrecisionError, match="fraction of a cent"):
        to_cents(Decimal("0.105"))
    with pytest.raises(MoneyPrecisionError):
        to_cents(Decimal("NaN"))
    with pytest.raises(MoneyPrecisionError, match="too large"):
        to_cents(Decimal("1e400"))  # quantize() itself raises InvalidOperation on this
    assert to_cents(Decimal("99999999999999.99")) == 9999999999999999
    # More digits than the context's 28: a shortcut that rounded would call this whole cents.
    with pytest.raises(MoneyPrecisionError, match="fraction of a cent"):
        to_cents(Decimal("1.0000000000000000000000000001"))
    assert to_cents(Decimal("0E+20")) == 0 and to_cents(Decimal("-0.00")) == 0


def test_money_column_refuses_float_and_sub_cent(scratch: Scratch) -> None:
    engine, table = scratch
    with engine.begin() as connection:
        for bad in (0.1, Decimal("1.001")):
            with pytest.raises(StatementError) as caught:
                connection.execute(insert(table).values(money=bad))
            assert isinstance(caught.value.orig, MoneyPrecisionError)


def test_sum_of_many_cents_is_exact(scratch: Scratch) -> None:
    engine, table = scratch
    with engine.begin() as connection:
        connection.execute(insert(table), [{"money": a} for a in AMOUNTS])
        total = connection.execute(select(func.sum(table.c.money))).scalar_one()
        stored = connection.execute(text("SELECT sum(money) FROM scratch")).scalar_one()
    assert total == Decimal("1110.00")
    assert isinstance(total, Decimal)
    assert int(stored) == 111000  # integer cents in the database itself


def test_numeric_on_sqlite_drifts_where_money_does_not(tmp_path: Path) -> None:
    """Why money is not NUMERIC: SQLite keeps NUMERIC values as binary floats."""
    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'n.sqlite3'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE n (amount NUMERIC(12, 2))")
        connection.exec_driver_sql("INSERT INTO n VALUES (?)", [(str(a),) for a in AMOUNTS])
        raw = connection.exec_driver_sql("SELECT sum(amount) FROM n").scalar_one()
    engine.dispose()
    assert isinstance(raw, float)
    assert raw != 1110.0  # the float sum has drifted off the exact total
    assert abs(raw - 1110.0) < 1e-6


def test_times_come_back_aware_utc(scratch: Scratch) -> None:
    engine, table = scratch
    local = datetime(2024, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    with engine.begin() as connection:
        connection.execute(insert(table).values(id=1, at=local))
        value = connection.execute(select(table.c.at)).scalar_one()
        with pytest.raises(StatementError):
            connection.execute(insert(table).values(id=2, at=datetime(2024, 3, 1)))
    assert value == datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    assert value.utcoffset() == timedelta(0)


def test_quantities_round_trip_exactly(scratch: Scratch) -> None:
    engine, table = scratch
    with engine.begin() as connection:
        connection.execute(insert(table).values(id=1, qty=Decimal("1.125")))
        assert connection.execute(select(table.c.qty)).scalar_one() == Decimal("1.125")
        with pytest.raises(StatementError):
            connection.execute(insert(table).values(id=2, qty=1.5))


def test_foreign_keys_are_enforced(migrated_engine: Engine) -> None:
    row = {
        "sha256": "f" * 64,
        "name": "x.835",
        "kind": "835",
        "size": 1,
        "received_at": datetime(2024, 1, 1, tzinfo=UTC),
        "status": "received",
        "findings": [],
        "error_summary": "",
        "interchange_control_number": "",
        "sender_id": "",
    }
    with pytest.raises(IntegrityError), migrated_engine.begin() as connection:
        connection.execute(insert(SourceFile), [row])  # no file_blobs row for that sha256
    with migrated_engine.begin() as connection:
        connection.execute(insert(FileBlob), [{"sha256": "f" * 64, "size": 1, "content": b"x"}])
        connection.execute(insert(SourceFile), [row])
    with pytest.raises(IntegrityError), migrated_engine.begin() as connection:
        connection.execute(insert(SourceFile), [{**row, "status": "bogus"}])
