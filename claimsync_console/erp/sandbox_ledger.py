"""The sandbox ERP's ledger: the embedded ledger, tuned to serve many HTTP threads.

Durability: the embedded ledger commits with ``synchronous=FULL`` (one fsync per entry, ~36/s
on this disk), right for the books of record. The sandbox is a stand-in ERP, so by default it
runs WAL with ``synchronous=NORMAL``: a commit survives the sandbox being killed, not a power
cut, and a posting costs a fraction of a millisecond. ``durability="full"`` restores the
ledger's behaviour. Writes are serialised by a process lock, so threads never meet on SQLite's
busy handler (whose back-off sleeps are milliseconds long). One cached connection per thread
saves the open-and-pragma cost the embedded ledger pays on every call.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

from claimsync_console.domain.journal import JournalEntry
from claimsync_console.erp.base import (
    AdapterOption,
    ErpError,
    PermanentErpError,
    PostingResult,
    validate_entry,
)
from claimsync_console.erp.ledger import LedgerAdapter, _as_erp_errors, _fingerprint, _ref
from claimsync_console.erp.ledger_schema import to_cents, write_transaction

DURABILITY = ("normal", "full")


class SandboxLedger(LedgerAdapter):
    """The embedded ledger tuned to serve many threads: one cached connection per thread,
    the chosen ``synchronous`` level, and one writer at a time."""

    name: ClassVar[str] = "sandbox-ledger"
    options: ClassVar[tuple[AdapterOption, ...]] = (
        *LedgerAdapter.options,
        AdapterOption(
            "durability", str, default="normal", choices=DURABILITY, help="SQLite synchronous"
        ),
    )

    def __init__(self, options: Mapping[str, object] | None = None) -> None:
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._synchronous = "FULL"  # until the options are read: start-up writes stay safe
        super().__init__(options)
        self._synchronous = self.option_str("durability").upper()

    def _connection(self) -> Any:
        return self._cached_connection()

    @contextmanager
    def _cached_connection(self) -> Iterator[sqlite3.Connection]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn, self._local.mode = conn, ""
        if self._local.mode != self._synchronous:
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._local.mode = self._synchronous
        yield conn

    def post_entry(self, entry: JournalEntry) -> PostingResult:
        with self._write_lock:
            return super().post_entry(entry)

    def reverse_entry(
        self, erp_reference: str, idempotency_key: str, reversal_date: date
    ) -> PostingResult:
        with self._write_lock:
            return super().reverse_entry(erp_reference, idempotency_key, reversal_date)

    def post_many(self, entries: Iterable[JournalEntry]) -> list[PostingResult | ErpError]:
        """Group commit for the batch endpoint: every entry of a request in ONE transaction, so
        one commit (one fsync under ``durability="full"``) carries the whole request. Stops at
        the first refused entry, returned in place of its result; the ones before it stand."""
        results: list[PostingResult | ErpError] = []
        with (
            self._write_lock,
            _as_erp_errors(),
            self._connection() as conn,
            write_transaction(conn),
        ):
            for entry in entries:
                try:
                    results.append(self._post_in(conn, entry))
                except PermanentErpError as exc:
                    results.append(exc)
                    break
        return results

    def _post_in(self, conn: sqlite3.Connection, entry: JournalEntry) -> PostingResult:
        """One posting inside the caller's transaction; the same checks as ``post_entry``."""
        validate_entry(entry)
        rows = [
            (ln.account, to_cents(ln.debit), to_cents(ln.credit), ln.cost_centre, ln.memo)
            for ln in entry.lines
        ]
        digest = _fingerprint(entry.entry_date, rows)
        known = self._lookup_key(conn, entry.idempotency_key)
        if known is not None:
            return self._replay(known, entry.idempotency_key, digest)
        self._check_accounts(conn, {row[0] for row in rows})
        self._check_period(conn, entry.entry_date)
        conn.execute("SAVEPOINT one_entry")
        try:
            entry_id = self._insert(conn, entry, None, digest, rows)
        except BaseException:
            conn.execute("ROLLBACK TO one_entry")
            raise
        finally:
            conn.execute("RELEASE one_entry")
        return PostingResult(_ref(entry_id), True, entry.idempotency_key)


def open_sandbox_ledger(
    path: Path, *, durability: str = "normal", year: int | None = None
) -> SandboxLedger:
    """A sandbox ledger; a new one gets the default chart and last, this and next year open."""
    ledger = SandboxLedger({"path": str(path), "durability": durability})
    if ledger.entry_count() == 0 and not ledger.trial_balance():
        this_year = year or datetime.now(UTC).year
        ledger.bootstrap_chart(year=this_year)
        for other in (this_year - 1, this_year + 1):
            ledger.open_year(other)
    return ledger
