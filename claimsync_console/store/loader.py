"""Streams a reader's domain objects into the tables in batches, inside the caller's transaction.

Objects arrive in file order (an 835 header, its claim payments, its trailer; or 837 claims; or
277CA statuses). Claim payments and claims are buffered up to ``batch_size`` and then written
with one executemany per table, then their children. So memory holds one batch, never the file,
and a 100k-claim file costs a few hundred statements.

Parent ids are mostly reserved, not read back with RETURNING: SQLAlchemy keeps RETURNING ids
in input order on SQLite only by inserting one row per statement, which made a 100k-claim
ingest 14x slower than a raw sqlite3 load (benchmarks/bench_ingest.py). The first row of a
batch is inserted with RETURNING (on SQLite that takes the one write lock) and the rest follow
its id; on PostgreSQL ``nextval`` hands out the block. Other backends keep RETURNING. On SQLite
the executemany itself skips SQLAlchemy's per-row parameter work (``_InsertPlan``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, Dialect, Table, insert, select, text
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from claimsync_console.domain import (
    Claim,
    ClaimPayment,
    ClaimStatus,
    RemittanceHeader,
    RemittanceTrailer,
    ServicePayment,
)
from claimsync_console.store import queries, rows
from claimsync_console.store.models import (
    AdjustmentRow,
    Base,
    ClaimPaymentRow,
    ClaimRow,
    FileBlob,
    ServicePaymentRow,
)
from claimsync_console.store.rows import Row, UnstorableValueError

DEFAULT_BATCH_SIZE = 1000
T = TypeVar("T")
ADJUSTMENTS = cast(Table, AdjustmentRow.__table__)
InsertReturning = Callable[[Session, Sequence[Row]], list[int]]


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


BLOB_CHUNK = 1 << 20


def add_blob_streamed(session: Session, sha256: str, content: bytes) -> None:
    """``queries.add_blob`` without the copies: on SQLite the row is inserted with a zeroblob
    and the bytes written into it a MiB at a time, because binding 37 MB made SQLite hold two
    more whole copies (the bound value and the record), which put a 100k-claim ingest over its
    RSS budget. Other backends use ``queries.add_blob`` as it is."""
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    if not isinstance(raw, sqlite3.Connection) or not hasattr(raw, "blobopen"):
        queries.add_blob(session, sha256, content)
        return
    if session.scalar(select(FileBlob.sha256).where(FileBlob.sha256 == sha256)) is not None:
        return
    rowid = connection.exec_driver_sql(
        "INSERT INTO file_blobs (sha256, size, content) VALUES (?, ?, zeroblob(?)) RETURNING rowid",
        (sha256, len(content), len(content)),
    ).scalar_one()
    if content:
        with raw.blobopen("file_blobs", "content", rowid) as blob:
            view = memoryview(content)
            for start in range(0, len(content), BLOB_CHUNK):
                blob.write(view[start : start + BLOB_CHUNK])


class _InsertPlan:
    """One table's executemany on SQLite without SQLAlchemy's per-row parameter machinery.

    The statement and each column's bind processor are SQLAlchemy's own, compiled once, so the
    stored values are the same; what goes is the per-row work around them, and ``json.dumps``
    for the empty JSON values that make up half of a claim's 23 JSON cells (the 100k ingest
    spent a sixth of its time there). None when the table needs more than the rows give (a
    column default SQLAlchemy computes), and the caller takes the ordinary path."""

    def __init__(self, sql: str, steps: list[tuple[str, Callable[[Any], Any] | None]]) -> None:
        self.sql = sql
        self.steps = steps

    @classmethod
    def build(cls, table: Table, keys: tuple[str, ...], dialect: Dialect) -> _InsertPlan | None:
        compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
        order = compiled.positiontup
        if order is None or sorted(order) != sorted(keys):
            return None
        steps = [(name, _fast_json(table.c[name].type, dialect)) for name in order]
        return cls(compiled.string, steps)

    def params(self, row: Row) -> tuple[Any, ...]:
        return tuple([row[k] if f is None else f(row[k]) for k, f in self.steps])


def _fast_json(column_type: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column's bind processor; for JSON, one that answers None and [] without dumping,
    if the engine's serializer gives exactly what that answer is."""
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    if process is None or not isinstance(column_type, JSON):
        return process
    if process(None) != "null" or process([]) != "[]":
        return process
    dump = process

    def json_cell(value: Any) -> Any:
        if value is None:
            return "null"
        if value == []:
            return "[]"
        return dump(value)

    return json_cell


class BatchLoader:
    """Feed it objects with ``add``; call ``finish`` once the reader is exhausted."""

    def __init__(
        self, session: Session, source_file_id: int, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.session = session
        self.source_file_id = source_file_id
        self.batch_size = batch_size
        self._remittance_id: int | None = None
        self._sequence = 0
        self._payments: list[tuple[ClaimPayment, int, int]] = []
        self._claims: list[Claim] = []
        self._statuses: list[Row] = []
        self._plans: dict[tuple[str, tuple[str, ...]], _InsertPlan | None] = {}

    def add(self, item: object) -> None:
        if isinstance(item, ClaimPayment):
            self._add_payment(item)
        elif isinstance(item, Claim):
            self._claims.append(item)
            if len(self._claims) >= self.batch_size:
                self._flush_claims()
        elif isinstance(item, ClaimStatus):
            self._statuses.append(rows.claim_status_row(item, self.source_file_id))
            if len(self._statuses) >= self.batch_size:
                self._flush_statuses()
        elif isinstance(item, RemittanceHeader):
            self._start_remittance(item)
        elif isinstance(item, RemittanceTrailer):
            self._finish_remittance(item)

    def finish(self) -> None:
        self._flush_payments()
        self._flush_claims()
        self._flush_statuses()

    # -- 835 ---------------------------------------------------------------------------------

    def _start_remittance(self, header: RemittanceHeader) -> None:
        self._flush_payments()
        row = rows.remittance_row(header, self.source_file_id)
        self._remittance_id = queries.insert_remittance(self.session, row)
        self._sequence = 0

    def _add_payment(self, payment: ClaimPayment) -> None:
        if self._remittance_id is None:
            raise UnstorableValueError(
                payment.segment_start, "CLP", "a claim payment arrived outside any 835 header"
            )
        self._sequence += 1
        sequence = payment.sequence or self._sequence
        self._payments.append((payment, self._remittance_id, sequence))
        if len(self._payments) >= self.batch_size:
            self._flush_payments()

    def _finish_remittance(self, trailer: RemittanceTrailer) -> None:
        self._flush_payments()
        remittance_id = self._remittance_id
        if remittance_id is None:
            raise UnstorableValueError(
                trailer.segment_end, "SE", "an 835 trailer arrived outside any 835 header"
            )
        queries.finish_remittance(self.session, remittance_id, rows.trailer_values(trailer))
        plb_rows = [
            rows.provider_adjustment_row(plb, remittance_id, position)
            for position, plb in enumerate(trailer.provider_adjustments, 1)
        ]
        for chunk in chunked(plb_rows, self.batch_size):
            queries.insert_provider_adjustments(self.session, chunk)
        self._remittance_id = None

    def _flush_payments(self) -> None:
        batch, self._payments = self._payments, []
        if not batch:
            return
        payment_rows = [
            rows.claim_payment_row(cp, remittance_id, self.source_file_id, sequence)
            for cp, remittance_id, sequence in batch
        ]
        payment_ids = self._insert_parents(
            ClaimPaymentRow, queries.insert_claim_payments, payment_rows
        )
        adjustments: list[Row] = []
        services: list[tuple[int, ServicePayment]] = []
        for (cp, _, _), payment_id in zip(batch, payment_ids, strict=True):
            adjustments.extend(
                rows.adjustment_row(adj, payment_id, None, position, cp.segment_start)
                for position, adj in enumerate(cp.adjustments, 1)
            )
            services.extend((payment_id, svc) for svc in cp.services)
        adjustments.extend(self._insert_services(services))
        for chunk in chunked(adjustments, self.batch_size * 4):
            self._executemany(ADJUSTMENTS, list(chunk))

    def _insert_services(self, services: list[tuple[int, ServicePayment]]) -> list[Row]:
        """Insert SVC rows; return their CAS rows, which need the new service ids."""
        service_rows: list[Row] = []
        line_numbers: dict[int, int] = {}
        for payment_id, svc in services:
            line_numbers[payment_id] = line_numbers.get(payment_id, 0) + 1
            service_rows.append(rows.service_payment_row(svc, payment_id, line_numbers[payment_id]))
        service_ids = self._insert_parents(
            ServicePaymentRow, queries.insert_service_payments, service_rows
        )
        return [
            rows.adjustment_row(adj, payment_id, service_id, position, svc.segment_index)
            for (payment_id, svc), service_id in zip(services, service_ids, strict=True)
            for position, adj in enumerate(svc.adjustments, 1)
        ]

    # -- 837 and 277CA -----------------------------------------------------------------------

    def _flush_claims(self) -> None:
        batch, self._claims = self._claims, []
        if not batch:
            return
        claim_ids = self._insert_parents(
            ClaimRow,
            queries.insert_claims,
            [rows.claim_row(claim, self.source_file_id) for claim in batch],
        )
        line_rows = [
            rows.service_line_row(line, claim_id, claim.segment_start)
            for claim, claim_id in zip(batch, claim_ids, strict=True)
            for line in claim.lines
        ]
        for chunk in chunked(line_rows, self.batch_size * 4):
            queries.insert_service_lines(self.session, chunk)

    def _flush_statuses(self) -> None:
        batch, self._statuses = self._statuses, []
        queries.insert_claim_statuses(self.session, batch)

    # -- ids -----------------------------------------------------------------------------------

    def _insert_parents(
        self, model: type[Base], insert_returning: InsertReturning, parent_rows: list[Row]
    ) -> list[int]:
        """Insert rows whose children need their ids; the ids come back in row order.

        The first row goes through the RETURNING insert in ``queries``, the rest get ids
        reserved after it and one executemany."""
        if not parent_rows:
            return []
        first_id = insert_returning(self.session, parent_rows[:1])[0]
        rest = parent_rows[1:]
        if not rest:
            return [first_id]
        table = cast(Table, model.__table__)
        ids = self._reserve_ids(table, first_id, len(rest))
        if ids is None:
            return [first_id, *insert_returning(self.session, rest)]
        for row, new_id in zip(rest, ids, strict=True):
            row["id"] = new_id
        self._executemany(table, rest)
        return [first_id, *ids]

    def _executemany(self, table: Table, batch: list[Row]) -> None:
        """One executemany of rows that all have the same keys."""
        if not batch:
            return
        dialect = self.session.get_bind().dialect
        plan = None
        if dialect.name == "sqlite":
            key = (table.name, tuple(batch[0]))
            if key not in self._plans:
                self._plans[key] = _InsertPlan.build(table, key[1], dialect)
            plan = self._plans[key]
        if plan is None:
            self.session.execute(insert(table), batch)
            return
        self.session.connection().exec_driver_sql(plan.sql, [plan.params(row) for row in batch])

    def _reserve_ids(self, table: Table, first_id: int, count: int) -> list[int] | None:
        """``count`` fresh ids for ``table`` after ``first_id``, or None when only the
        backend can assign them. SQLite gives a new row max(id) + 1, and the insert of
        ``first_id`` took the one write lock, so the ids after it stay free until commit."""
        backend = self.session.get_bind().dialect.name
        if backend == "sqlite":
            return list(range(first_id + 1, first_id + 1 + count))
        if backend == "postgresql":
            reserved = self.session.scalars(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"
                ),
                {"t": table.name, "n": count},
            )
            return sorted(reserved)
        return None
