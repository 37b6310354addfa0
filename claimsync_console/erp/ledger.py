"""The embedded ledger ERP: the default adapter, so ClaimSync works with nothing else installed.

A real double-entry ledger in its own SQLite file (see ``ledger_schema`` for why separate and
why plain ``sqlite3``). It rejects what a real ERP rejects (unknown or inactive accounts,
unbalanced entries, closed periods) with permanent errors, and it honours idempotency keys
through a UNIQUE constraint, so a retried or concurrently duplicated posting lands once.

Fault injection (``fail_mode``) is off by default and exists for tests and demos only: with
``"unavailable"`` every ERP call raises :class:`ErpUnavailableError`, with ``"rate_limited"`` it
raises :class:`RateLimitedError` carrying ``retry_after``. It may be switched at run time by
assigning :attr:`LedgerAdapter.fail_mode`. The ledger-side administration methods (chart,
periods, balances) ignore it: they are the ERP's own back office, not the API the engine calls.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import ClassVar

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.erp.base import (
    AdapterCapabilities,
    AdapterConfigError,
    AdapterHealth,
    AdapterOption,
    AlreadyReversedError,
    ClosedPeriodError,
    ErpAdapter,
    ErpUnavailableError,
    IdempotencyConflictError,
    InvalidEntryError,
    PostedEntry,
    PostingResult,
    RateLimitedError,
    UnknownAccountError,
    UnknownEntryError,
    validate_entry,
)
from claimsync_console.erp.ledger_schema import (
    DEFAULT_CHART,
    LedgerBooks,
    from_cents,
    initialise,
    to_cents,
    write_transaction,
)

FAIL_MODES = ("", "unavailable", "rate_limited")
_REF_PREFIX = "JE-"
_REF_PATTERN = re.compile(r"JE-(\d{1,18})")

# (account, debit_cents, credit_cents, cost_centre, memo)
_Row = tuple[str, int, int, str, str]


def _ref(entry_id: int) -> str:
    return f"{_REF_PREFIX}{entry_id:08d}"


def _parse_ref(erp_reference: str) -> int | None:
    match = _REF_PATTERN.fullmatch(erp_reference.strip())
    return int(match.group(1)) if match else None


@contextmanager
def _as_erp_errors() -> Iterator[None]:
    """The engine classifies only ErpError: a locked, missing or corrupt file is the ERP being
    down (transient, the circuit breaker handles it); a constraint the checks did not foresee is
    a refusal (permanent)."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise InvalidEntryError(f"ledger refused the entry: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise ErpUnavailableError(f"ledger busy or unreadable: {exc}") from exc


def _fingerprint(entry_date: date, rows: Iterable[_Row]) -> str:
    """What must match for a re-post to count as the same posting; free text (description,
    memo) is left out so that rewording a template cannot turn a retry into a conflict."""
    text = entry_date.isoformat() + "|" + ";".join(f"{r[0]}:{r[1]}:{r[2]}:{r[3]}" for r in rows)
    return hashlib.sha256(text.encode()).hexdigest()


class LedgerAdapter(LedgerBooks, ErpAdapter):
    """Double-entry ledger in a local SQLite file; amounts are stored as integer cents.

    The back office (``create_account``, ``open_period``/``close_period``, ``bootstrap_chart``,
    ``account_balance``, ``trial_balance``, ``entry_count``) comes from :class:`LedgerBooks`.
    """

    name: ClassVar[str] = "ledger"
    capabilities: ClassVar[AdapterCapabilities] = AdapterCapabilities(
        supports_reversal=True,
        supports_batch=False,
        supports_idempotency_keys=True,
        supports_periods=True,
        supports_cost_centres=True,
        max_batch_size=1,
    )
    options: ClassVar[tuple[AdapterOption, ...]] = (
        AdapterOption("path", str, help="the ledger's own SQLite file", required=True),
        AdapterOption(
            "fail_mode",
            str,
            default="",
            choices=FAIL_MODES,
            help="fault injection for tests and demos: '' (off), 'unavailable', 'rate_limited'",
        ),
        AdapterOption(
            "retry_after",
            float,
            default=1.0,
            help="seconds that fail_mode='rate_limited' asks the caller to wait",
        ),
        AdapterOption(
            "busy_timeout",
            float,
            default=30.0,
            help="seconds a posting waits for another writer before it counts as unavailable",
        ),
        AdapterOption(
            "bootstrap_year",
            int,
            default=0,
            help="if > 0 and the chart is empty: seed DEFAULT_CHART, open that year's months",
        ),
    )

    def __init__(self, options: Mapping[str, object] | None = None) -> None:
        super().__init__(options)
        raw_path = self.option_str("path")
        if raw_path.strip() in ("", ":memory:"):
            raise AdapterConfigError("the ledger needs a file path (it is its own database)")
        self.path = Path(raw_path)
        self.fail_mode = self.option_str("fail_mode")
        self.busy_timeout = self.option_float("busy_timeout")
        initialise(self.path)
        year = self.settings["bootstrap_year"]
        if isinstance(year, int) and year > 0 and not self.trial_balance():
            self.bootstrap_chart(DEFAULT_CHART, year=year)

    # ------------------------------------------------------------------ the ERP API

    def post_entry(self, entry: JournalEntry) -> PostingResult:
        validate_entry(entry)  # before any I/O: an unbalanced entry is never "sent"
        self._inject_fault()
        rows = [
            (ln.account, to_cents(ln.debit), to_cents(ln.credit), ln.cost_centre, ln.memo)
            for ln in entry.lines
        ]

        def write(conn: sqlite3.Connection) -> int:
            self._check_accounts(conn, {row[0] for row in rows})
            self._check_period(conn, entry.entry_date)
            return self._insert(conn, entry, None, fingerprint, rows)

        fingerprint = _fingerprint(entry.entry_date, rows)
        return self._post_once(entry.idempotency_key, fingerprint, write)

    def reverse_entry(
        self, erp_reference: str, idempotency_key: str, reversal_date: date
    ) -> PostingResult:
        if not idempotency_key.strip():
            raise InvalidEntryError("reversal has an empty idempotency key")
        self._inject_fault()
        original_id = _parse_ref(erp_reference)
        if original_id is None:
            raise UnknownEntryError(f"no ledger entry {erp_reference!r}")

        def write(conn: sqlite3.Connection) -> int:
            original, rows = self._reversible(conn, original_id)
            self._check_accounts(conn, {row[0] for row in rows})
            self._check_period(conn, reversal_date)
            mirror = JournalEntry(
                idempotency_key=idempotency_key,
                entry_date=reversal_date,
                description=f"Reversal of {_ref(original_id)}: {original.description}",
                lines=(),
                reference=original.reference,
            )
            return self._insert(conn, mirror, original_id, fingerprint, rows)

        fingerprint = f"reversal-of:{original_id}"
        return self._post_once(idempotency_key, fingerprint, write)

    def get_entry(self, erp_reference: str) -> PostedEntry | None:
        self._inject_fault()
        entry_id = _parse_ref(erp_reference)
        if entry_id is None:
            return None
        with _as_erp_errors(), self._connection() as conn:
            return self._load(conn, entry_id)

    def find_entry(self, idempotency_key: str) -> PostedEntry | None:
        """Look an entry up by its idempotency key (ledger-only; for checks and the console)."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT id FROM entries WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            return None if row is None else self._load(conn, row[0])

    def health(self) -> AdapterHealth:
        started = time.perf_counter()
        try:
            with self._connection() as conn:
                count = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        except (sqlite3.Error, OSError) as exc:
            return AdapterHealth(False, f"ledger unreadable: {exc}", time.perf_counter() - started)
        latency = time.perf_counter() - started
        if self.fail_mode:
            return AdapterHealth(False, f"fault injection active: {self.fail_mode}", latency)
        return AdapterHealth(True, f"ledger {self.path.name}: {count} entries", latency)

    # ------------------------------------------------------------------ posting internals

    def _inject_fault(self) -> None:
        if self.fail_mode == "unavailable":
            raise ErpUnavailableError("ledger unavailable (fault injection fail_mode=unavailable)")
        if self.fail_mode == "rate_limited":
            raise RateLimitedError(
                "ledger rate limited (fault injection fail_mode=rate_limited)",
                retry_after=self.option_float("retry_after"),
            )

    def _post_once(
        self, key: str, fingerprint: str, write: Callable[[sqlite3.Connection], int]
    ) -> PostingResult:
        """Idempotent write: a pre-check answers the common retry cheaply; when two posters
        race past it, the UNIQUE key makes the loser fail, and it re-reads the winner's row."""
        with _as_erp_errors(), self._connection() as conn:
            known = self._lookup_key(conn, key)
            if known is not None:
                return self._replay(known, key, fingerprint)
            try:
                with write_transaction(conn):
                    entry_id = write(conn)
            except sqlite3.IntegrityError:
                known = self._lookup_key(conn, key, force=True)
                if known is None:
                    raise
                return self._replay(known, key, fingerprint)
        return PostingResult(_ref(entry_id), True, key)

    def _lookup_key(
        self, conn: sqlite3.Connection, key: str, *, force: bool = False
    ) -> tuple[int, str] | None:
        """(entry id, fingerprint) for a key; ``force`` marks the re-read after a lost race."""
        row = conn.execute(
            "SELECT id, fingerprint FROM entries WHERE idempotency_key = ?", (key,)
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    @staticmethod
    def _replay(known: tuple[int, str], key: str, fingerprint: str) -> PostingResult:
        entry_id, stored = known
        if stored != fingerprint:
            raise IdempotencyConflictError(
                f"idempotency key {key} was already used by {_ref(entry_id)} for other content"
            )
        return PostingResult(_ref(entry_id), False, key)

    @staticmethod
    def _check_accounts(conn: sqlite3.Connection, codes: set[str]) -> None:
        marks = ",".join("?" * len(codes))
        active = {
            row[0]
            for row in conn.execute(
                f"SELECT code FROM accounts WHERE active = 1 AND code IN ({marks})",
                sorted(codes),
            )
        }
        missing = sorted(codes - active)
        if missing:
            raise UnknownAccountError(f"unknown or inactive account(s): {', '.join(missing)}")

    @staticmethod
    def _check_period(conn: sqlite3.Connection, on: date) -> None:
        row = conn.execute(
            "SELECT closed FROM periods WHERE start_date <= ?1 AND end_date >= ?1",
            (on.isoformat(),),
        ).fetchone()
        if row is None:
            raise ClosedPeriodError(f"no accounting period covers {on.isoformat()}")
        if row[0]:
            raise ClosedPeriodError(f"the period covering {on.isoformat()} is closed")

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        entry: JournalEntry,
        reversal_of: int | None,
        fingerprint: str,
        rows: Iterable[_Row],
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO entries (idempotency_key, entry_date, description, reference,"
            " reversal_of, fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                entry.idempotency_key,
                entry.entry_date.isoformat(),
                entry.description,
                entry.reference,
                reversal_of,
                fingerprint,
                datetime.now(UTC).isoformat(),
            ),
        )
        entry_id = int(cursor.lastrowid or 0)
        conn.executemany(
            "INSERT INTO lines (entry_id, line_no, account, debit_cents, credit_cents,"
            " cost_centre, memo) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(entry_id, number, *row) for number, row in enumerate(rows, start=1)],
        )
        return entry_id

    def _reversible(
        self, conn: sqlite3.Connection, entry_id: int
    ) -> tuple[PostedEntry, list[_Row]]:
        """The original and its mirrored rows; refuses what must never be reversed."""
        original = self._load(conn, entry_id)
        if original is None:
            raise UnknownEntryError(f"no ledger entry {_ref(entry_id)}")
        if original.reversal_of is not None:
            raise InvalidEntryError(f"{_ref(entry_id)} is itself a reversal; post a new entry")
        if original.reversed_by is not None:
            raise AlreadyReversedError(
                f"{_ref(entry_id)} was already reversed by {original.reversed_by}"
            )
        rows = [
            (ln.account, to_cents(ln.credit), to_cents(ln.debit), ln.cost_centre, ln.memo)
            for ln in original.lines
        ]
        return original, rows

    @staticmethod
    def _load(conn: sqlite3.Connection, entry_id: int) -> PostedEntry | None:
        head = conn.execute(
            "SELECT e.idempotency_key, e.entry_date, e.description, e.reference, e.reversal_of,"
            " e.created_at, (SELECT r.id FROM entries r WHERE r.reversal_of = e.id)"
            " FROM entries e WHERE e.id = ?",
            (entry_id,),
        ).fetchone()
        if head is None:
            return None
        lines = tuple(
            JournalLine(account, from_cents(debit), from_cents(credit), centre, memo)
            for account, debit, credit, centre, memo in conn.execute(
                "SELECT account, debit_cents, credit_cents, cost_centre, memo FROM lines"
                " WHERE entry_id = ? ORDER BY line_no",
                (entry_id,),
            )
        )
        key, entry_date, description, reference, reversal_of, created_at, reversed_by = head
        return PostedEntry(
            erp_reference=_ref(entry_id),
            idempotency_key=key,
            entry_date=date.fromisoformat(entry_date),
            description=description,
            reference=reference,
            lines=lines,
            reversal_of=None if reversal_of is None else _ref(reversal_of),
            reversed_by=None if reversed_by is None else _ref(reversed_by),
            created_at=datetime.fromisoformat(created_at),
        )
