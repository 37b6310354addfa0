"""The embedded ledger's storage and back office: schema, default chart, cents, periods, balances.

The ledger lives in its own SQLite file, apart from the engine's store, as a real ERP would:
the engine can only reach it through the adapter protocol, so nothing can "fix" a posting by
writing both databases in one transaction, and the crash tests prove what they claim.

It uses the ``sqlite3`` stdlib rather than SQLAlchemy: it is SQLite-only by design, and it
needs exact control over ``BEGIN IMMEDIATE`` and over which ``IntegrityError`` means "this
idempotency key is already posted".
"""

from __future__ import annotations

import calendar
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from claimsync_console.erp.base import ClosedPeriodError, UnknownAccountError

SCHEMA_VERSION = 1

ACCOUNT_TYPES = ("asset", "liability", "equity", "revenue", "contra_revenue", "expense")

# Entries and lines are append-only: a correction is a reversal, never an UPDATE. The triggers
# make that a property of the file rather than a promise of this module.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('asset', 'liability', 'equity', 'revenue',
                                       'contra_revenue', 'expense')),
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
);
CREATE TABLE IF NOT EXISTS periods (
    start_date TEXT PRIMARY KEY,
    end_date TEXT NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0 CHECK (closed IN (0, 1)),
    CHECK (end_date >= start_date)
);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    entry_date TEXT NOT NULL,
    description TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '',
    reversal_of INTEGER UNIQUE REFERENCES entries (id),
    fingerprint TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES entries (id),
    line_no INTEGER NOT NULL,
    account TEXT NOT NULL REFERENCES accounts (code),
    debit_cents INTEGER NOT NULL CHECK (debit_cents >= 0),
    credit_cents INTEGER NOT NULL CHECK (credit_cents >= 0),
    cost_centre TEXT NOT NULL DEFAULT '',
    memo TEXT NOT NULL DEFAULT '',
    UNIQUE (entry_id, line_no)
);
CREATE INDEX IF NOT EXISTS lines_by_account ON lines (account);
CREATE TRIGGER IF NOT EXISTS entries_immutable_u BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable; post a reversal'); END;
CREATE TRIGGER IF NOT EXISTS entries_immutable_d BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable; post a reversal'); END;
CREATE TRIGGER IF NOT EXISTS lines_immutable_u BEFORE UPDATE ON lines
    BEGIN SELECT RAISE(ABORT, 'ledger lines are immutable; post a reversal'); END;
CREATE TRIGGER IF NOT EXISTS lines_immutable_d BEFORE DELETE ON lines
    BEGIN SELECT RAISE(ABORT, 'ledger lines are immutable; post a reversal'); END;
"""


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """One account of a chart; ``type`` is one of :data:`ACCOUNT_TYPES`."""

    code: str
    name: str
    type: str


# The default chart: enough for the demo and the sample rules file. Payer receivables are a
# 1200-series so that each payer (or payer class) gets its own sub-ledger.
DEFAULT_CHART: tuple[AccountSpec, ...] = (
    AccountSpec("1010", "Cash clearing (ERA deposits)", "asset"),
    AccountSpec("1200", "Payer receivable - unassigned", "asset"),
    AccountSpec("1210", "Payer receivable - Medicare", "asset"),
    AccountSpec("1220", "Payer receivable - Medicaid", "asset"),
    AccountSpec("1230", "Payer receivable - Commercial", "asset"),
    AccountSpec("1240", "Payer receivable - Other", "asset"),
    AccountSpec("1250", "Recoupment receivable (PLB WO/72)", "asset"),
    AccountSpec("1300", "Patient receivable", "asset"),
    AccountSpec("4000", "Gross patient revenue", "revenue"),
    AccountSpec("4100", "Contractual allowance (CO)", "contra_revenue"),
    AccountSpec("4110", "Sequestration (CO-253)", "contra_revenue"),
    AccountSpec("4120", "Coordination of benefits / other adjustments (OA)", "contra_revenue"),
    AccountSpec("4130", "Payer-initiated reductions (PI)", "contra_revenue"),
    AccountSpec("4150", "Denials write-off", "contra_revenue"),
    AccountSpec("4160", "Bad debt", "expense"),
    AccountSpec("7100", "Interest income (PLB L6)", "revenue"),
)


def to_cents(amount: Decimal) -> int:
    """Exact Decimal -> integer cents; callers validated that there are no sub-cents."""
    cents = amount.scaleb(2)
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} has sub-cent digits")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    """Integer cents -> Decimal with exactly two places (``Decimal('70.00')``)."""
    return Decimal(cents).scaleb(-2)


def initialise(path: Path) -> None:
    """Create the file and schema if needed; WAL lets readers run while a worker posts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with connection(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )


@contextmanager
def connection(path: Path, busy_timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """A fresh autocommit connection per operation: safe across threads, and across workers in
    other processes, at the cost of an open per call (tens of microseconds)."""
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        # FULL: a committed posting survives power loss too, as the engine's store will have
        # recorded it as done; NORMAL would only survive a process crash.
        conn.execute("PRAGMA synchronous=FULL")
        yield conn
    finally:
        conn.close()


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` takes the write lock up front, so two writers queue on the busy
    timeout instead of failing to upgrade a read lock halfway through a posting."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class LedgerBooks:
    """The ledger's back office (chart, periods, balances): what the ERP's own accountants do,
    kept apart from the posting API so that ``ledger.py`` reads as the adapter alone."""

    path: Path
    busy_timeout: float = 30.0  # seconds a writer waits for the lock before giving up

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        return connection(self.path, self.busy_timeout)

    def create_account(
        self, code: str, name: str, account_type: str, *, active: bool = True
    ) -> None:
        """Add an account; a duplicate code or an unknown type is a ValueError."""
        if account_type not in ACCOUNT_TYPES:
            raise ValueError(f"account type {account_type!r} is not one of {ACCOUNT_TYPES}")
        try:
            with self._connection() as conn:
                conn.execute(
                    "INSERT INTO accounts (code, name, type, active) VALUES (?, ?, ?, ?)",
                    (code, name, account_type, int(active)),
                )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"account {code} already exists") from exc

    def set_account_active(self, code: str, active: bool) -> None:
        """Deactivate (or reactivate) an account; postings to an inactive one are refused."""
        with self._connection() as conn:
            cursor = conn.execute(
                "UPDATE accounts SET active = ? WHERE code = ?", (int(active), code)
            )
        if cursor.rowcount == 0:
            raise UnknownAccountError(f"unknown account {code}")

    def open_period(self, start: date, end: date) -> None:
        """Open a period; overlapping an existing one is a ValueError (dates must be unique)."""
        if end < start:
            raise ValueError(f"period end {end} is before its start {start}")
        with self._connection() as conn, write_transaction(conn):
            clash = conn.execute(
                "SELECT start_date FROM periods WHERE start_date <= ? AND end_date >= ?",
                (end.isoformat(), start.isoformat()),
            ).fetchone()
            if clash is not None:
                raise ValueError(f"period {start}..{end} overlaps the one starting {clash[0]}")
            conn.execute(
                "INSERT INTO periods (start_date, end_date) VALUES (?, ?)",
                (start.isoformat(), end.isoformat()),
            )

    def open_year(self, year: int) -> int:
        """Open the twelve months of ``year`` that are not open yet; returns how many."""
        opened = 0
        for month in range(1, 13):
            start = date(year, month, 1)
            end = date(year, month, calendar.monthrange(year, month)[1])
            with self._connection() as conn:
                exists = conn.execute(
                    "SELECT 1 FROM periods WHERE start_date = ?", (start.isoformat(),)
                ).fetchone()
            if exists is None:
                self.open_period(start, end)
                opened += 1
        return opened

    def close_period(self, on: date) -> None:
        """Close the period that covers ``on``; postings dated in it are then refused."""
        self._set_period_closed(on, True)

    def reopen_period(self, on: date) -> None:
        """Reopen a closed period, e.g. so that a dead-lettered posting can be retried."""
        self._set_period_closed(on, False)

    def _set_period_closed(self, on: date, closed: bool) -> None:
        with self._connection() as conn:
            cursor = conn.execute(
                "UPDATE periods SET closed = ?1 WHERE start_date <= ?2 AND end_date >= ?2",
                (int(closed), on.isoformat()),
            )
        if cursor.rowcount == 0:
            raise ClosedPeriodError(f"no accounting period covers {on.isoformat()}")

    def bootstrap_chart(
        self, accounts: Iterable[AccountSpec] = DEFAULT_CHART, *, year: int | None = None
    ) -> int:
        """Seed a chart (existing codes are kept as they are) and open a year of monthly
        periods (the current UTC year by default). Returns how many accounts were added."""
        added = 0
        with self._connection() as conn, write_transaction(conn):
            for spec in accounts:
                if spec.type not in ACCOUNT_TYPES:
                    raise ValueError(f"account {spec.code}: unknown type {spec.type!r}")
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO accounts (code, name, type) VALUES (?, ?, ?)",
                    (spec.code, spec.name, spec.type),
                )
                added += cursor.rowcount
        self.open_year(year if year is not None else datetime.now(UTC).year)
        return added

    def account_balance(self, code: str) -> Decimal:
        """Debits minus credits (debit-positive, whatever the account type)."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT a.code, coalesce(sum(l.debit_cents - l.credit_cents), 0)"
                " FROM accounts a LEFT JOIN lines l ON l.account = a.code"
                " WHERE a.code = ? GROUP BY a.code",
                (code,),
            ).fetchone()
        if row is None:
            raise UnknownAccountError(f"unknown account {code}")
        return from_cents(int(row[1]))

    def trial_balance(self) -> dict[str, Decimal]:
        """Every account's debit-positive balance, by code; the values always sum to zero."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT a.code, coalesce(sum(l.debit_cents - l.credit_cents), 0)"
                " FROM accounts a LEFT JOIN lines l ON l.account = a.code"
                " GROUP BY a.code ORDER BY a.code"
            ).fetchall()
        return {code: from_cents(int(cents)) for code, cents in rows}

    def entry_count(self) -> int:
        """How many entries (reversals included) the ledger holds."""
        with self._connection() as conn:
            return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
