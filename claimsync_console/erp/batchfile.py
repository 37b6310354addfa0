"""The batch-file ERP adapter, for ERPs that import journal files from a folder.

A posting is accepted into a small state database (next to the outbound folder, by default in
its hidden ``.claimsync`` subfolder) and gets its reference at once; entries are then *sealed*
into numbered batches of ``batch_size`` (or when the oldest waited ``max_wait_seconds``, or on
``flush``/``close``). Sealing writes, for batch N:

    <prefix>-000N.csv            one row per line
    <prefix>-000N.jsonl          one entry per line
    <prefix>-000N.manifest.json  control totals and the files' sha256, written LAST

Each file is written to a temporary name in the same folder, fsynced, then renamed, so the
importer never sees half a file; it should take a batch only once its manifest exists.

Why no entry can land twice: the state database assigns each idempotency key to exactly one
batch, in the same transaction that creates the batch, *before* any file is written. A crash
while writing leaves the batch marked unwritten; the next call rewrites the same batch, with
the same name and content, before doing anything else. A re-post of a key answers from the
state database (``created=False``) and never reaches a file again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.erp.base import (
    AdapterCapabilities,
    AdapterConfigError,
    AdapterHealth,
    AdapterOption,
    AlreadyReversedError,
    ErpAdapter,
    ErpUnavailableError,
    IdempotencyConflictError,
    InvalidEntryError,
    PostedEntry,
    PostingResult,
    UnknownAccountError,
    UnknownEntryError,
    validate_entry,
)
from claimsync_console.erp.batchfile_io import (
    STATE_SCHEMA,
    fingerprint,
    manifest_for,
    parse_ref,
    write_atomically,
    write_batch_files,
)
from claimsync_console.erp.rest_wire import entry_from_wire, entry_to_wire

FORMATS = ("both", "csv", "jsonl")
_REF = "BF-{:08d}"


class BatchFileAdapter(ErpAdapter):
    """Journal entries as CSV and JSON Lines batch files with manifests; see the module doc."""

    name: ClassVar[str] = "batchfile"
    capabilities: ClassVar[AdapterCapabilities] = AdapterCapabilities(
        supports_reversal=True,
        supports_batch=True,
        supports_idempotency_keys=True,
        supports_periods=False,
        supports_cost_centres=True,
        max_batch_size=1000,
    )
    options: ClassVar[tuple[AdapterOption, ...]] = (
        AdapterOption("outbound", str, required=True, help="folder the ERP imports from"),
        AdapterOption("format", str, default="both", choices=FORMATS, help="files per batch"),
        AdapterOption("batch_size", int, default=500, help="entries per batch file"),
        AdapterOption(
            "max_wait_seconds",
            float,
            default=60.0,
            help="seal a short batch once its oldest entry waited this long",
        ),
        AdapterOption("prefix", str, default="journal", help="batch file name prefix"),
        AdapterOption(
            "chart",
            str,
            default="",
            help="file of valid account codes (one per line, or CSV first column); "
            "empty accepts any account",
        ),
        AdapterOption(
            "state_path", str, default="", help="state database; empty: OUTBOUND/.claimsync/"
        ),
    )

    def __init__(self, options: Mapping[str, object] | None = None) -> None:
        super().__init__(options)
        self.outbound = Path(self.option_str("outbound")).expanduser()
        state = self.option_str("state_path")
        self.state_path = Path(state) if state else self.outbound / ".claimsync" / "state.sqlite3"
        size = self.settings["batch_size"]
        self.batch_size = size if isinstance(size, int) else 0
        if self.batch_size < 1:
            raise AdapterConfigError("batch_size must be at least 1")
        self.prefix = self.option_str("prefix")
        if not self.prefix or any(c in self.prefix for c in "/\\:"):
            raise AdapterConfigError(f"prefix {self.prefix!r} is not a plain file name")
        self.accounts = self._read_chart(self.option_str("chart"))
        self._ready = False
        self._accepted = False

    @staticmethod
    def _read_chart(path: str) -> frozenset[str] | None:
        if not path:
            return None
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise AdapterConfigError(f"chart {path}: {exc.strerror or exc}") from None
        codes = (line.split(",", 1)[0].strip() for line in text.splitlines())
        return frozenset(code for code in codes if code and not code.startswith("#"))

    # ------------------------------------------------------------------ the ERP API

    def post_entry(self, entry: JournalEntry) -> PostingResult:
        validate_entry(entry)
        self._check_accounts(entry)
        with self._state() as conn:
            result = self._accept(conn, entry, None)
        self._seal_due()
        return result

    def post_entries(self, entries: Any) -> list[PostingResult]:
        todo = list(entries)
        for entry in todo:
            validate_entry(entry)
            self._check_accounts(entry)
        results = []
        with self._state() as conn:
            for entry in todo:
                results.append(self._accept(conn, entry, None))
        self._seal_due()
        return results

    def reverse_entry(
        self, erp_reference: str, idempotency_key: str, reversal_date: date
    ) -> PostingResult:
        if not idempotency_key.strip():
            raise InvalidEntryError("reversal has an empty idempotency key")
        with self._state() as conn:
            original = self._load(conn, parse_ref(erp_reference))
            if original is None:
                raise UnknownEntryError(f"no batch-file entry {erp_reference!r}")
            mirror = JournalEntry(
                idempotency_key,
                reversal_date,
                f"Reversal of {original.erp_reference}: {original.description}",
                tuple(
                    JournalLine(ln.account, ln.credit, ln.debit, ln.cost_centre, ln.memo)
                    for ln in original.lines
                ),
                original.reference,
            )
            result = self._accept(conn, mirror, parse_ref(erp_reference))
        self._seal_due()
        return result

    def get_entry(self, erp_reference: str) -> PostedEntry | None:
        seq = parse_ref(erp_reference)
        if seq is None:
            return None
        with self._state() as conn:
            return self._load(conn, seq)

    def health(self) -> AdapterHealth:
        started = time.perf_counter()
        try:
            with self._state() as conn:
                pending = conn.execute(
                    "SELECT count(*) FROM entries WHERE batch IS NULL"
                ).fetchone()[0]
        except ErpUnavailableError as exc:
            return AdapterHealth(False, str(exc), time.perf_counter() - started)
        chart = "any account" if self.accounts is None else f"{len(self.accounts)} accounts"
        detail = f"outbound {self.outbound}: {pending} entries waiting for a batch; {chart}"
        return AdapterHealth(True, detail, time.perf_counter() - started)

    def flush(self) -> list[Path]:
        """Seal every waiting entry now; returns the manifests written."""
        return self._seal(force=True)

    def close(self) -> None:
        """Seal what this instance accepted; a health check alone writes no batch."""
        if self._accepted:
            self.flush()

    def entry_count(self) -> int:
        with self._state() as conn:
            return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])

    # ------------------------------------------------------------------ state

    @contextmanager
    def _state(self) -> Iterator[sqlite3.Connection]:
        """A connection to the state database; a missing or unwritable outbound folder (an
        unmounted share, say) is the ERP being unavailable, a transient error."""
        if not self.outbound.is_dir() or not os.access(self.outbound, os.W_OK):
            raise ErpUnavailableError(f"outbound folder {self.outbound} is missing or read-only")
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.state_path, timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ErpUnavailableError(f"batch state {self.state_path}: {exc}") from exc
        try:
            conn.execute("PRAGMA synchronous=FULL")
            if not self._ready:
                conn.executescript(STATE_SCHEMA)
                self._ready = True
                self._rewrite_unwritten(conn)
            yield conn
        except sqlite3.Error as exc:
            raise ErpUnavailableError(f"batch state {self.state_path}: {exc}") from exc
        finally:
            conn.close()

    def _check_accounts(self, entry: JournalEntry) -> None:
        if self.accounts is None:
            return
        missing = sorted({ln.account for ln in entry.lines} - self.accounts)
        if missing:
            raise UnknownAccountError(f"unknown account(s): {', '.join(missing)}")

    def _accept(
        self, conn: sqlite3.Connection, entry: JournalEntry, reversal_of: int | None
    ) -> PostingResult:
        key = entry.idempotency_key
        digest = f"reversal-of:{reversal_of}" if reversal_of else fingerprint(entry)
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT seq, fingerprint FROM entries WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if row is not None:
                conn.execute("ROLLBACK")
                if row[1] != digest:
                    raise IdempotencyConflictError(
                        f"idempotency key {key} was already used by {_REF.format(row[0])}"
                    )
                return PostingResult(_REF.format(row[0]), False, key)
            if reversal_of is not None:
                self._check_reversible(conn, reversal_of)
            seq = conn.execute(
                "INSERT INTO entries (idempotency_key, fingerprint, body, reversal_of,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (key, digest, json.dumps(entry_to_wire(entry)), reversal_of,
                 datetime.now(UTC).isoformat()),
            ).lastrowid  # fmt: skip
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._accepted = True
        return PostingResult(_REF.format(seq), True, key)

    @staticmethod
    def _check_reversible(conn: sqlite3.Connection, seq: int) -> None:
        row = conn.execute(
            "SELECT e.reversal_of, (SELECT r.seq FROM entries r WHERE r.reversal_of = e.seq)"
            " FROM entries e WHERE e.seq = ?",
            (seq,),
        ).fetchone()
        if row[0] is not None:
            raise InvalidEntryError(f"{_REF.format(seq)} is itself a reversal")
        if row[1] is not None:
            raise AlreadyReversedError(f"{_REF.format(seq)} was already reversed")

    @staticmethod
    def _load(conn: sqlite3.Connection, seq: int | None) -> PostedEntry | None:
        if seq is None:
            return None
        row = conn.execute(
            "SELECT e.body, e.reversal_of, e.created_at,"
            " (SELECT r.seq FROM entries r WHERE r.reversal_of = e.seq)"
            " FROM entries e WHERE e.seq = ?",
            (seq,),
        ).fetchone()
        if row is None:
            return None
        entry = entry_from_wire(json.loads(row[0]))
        return PostedEntry(
            erp_reference=_REF.format(seq),
            idempotency_key=entry.idempotency_key,
            entry_date=entry.entry_date,
            description=entry.description,
            reference=entry.reference,
            lines=entry.lines,
            reversal_of=None if row[1] is None else _REF.format(row[1]),
            reversed_by=None if row[3] is None else _REF.format(row[3]),
            created_at=datetime.fromisoformat(row[2]),
        )

    # ------------------------------------------------------------------ sealing

    def _seal_due(self) -> None:
        self._seal(force=False)

    def _seal(self, *, force: bool) -> list[Path]:
        written: list[Path] = []
        while True:
            with self._state() as conn:
                batch = self._claim_batch(conn, force)
                if batch is None:
                    return written
                written.append(self._write(conn, batch))

    def _claim_batch(self, conn: sqlite3.Connection, force: bool) -> int | None:
        """Assign the oldest waiting entries to a new batch, in one transaction."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            waiting, oldest = conn.execute(
                "SELECT count(*), min(created_at) FROM entries WHERE batch IS NULL"
            ).fetchone()
            if not waiting or not (force or waiting >= self.batch_size or self._too_old(oldest)):
                conn.execute("ROLLBACK")
                return None
            batch = conn.execute(
                "INSERT INTO batches (sealed_at) VALUES (?)", (datetime.now(UTC).isoformat(),)
            ).lastrowid
            conn.execute(
                "UPDATE entries SET batch = ? WHERE seq IN (SELECT seq FROM entries"
                " WHERE batch IS NULL ORDER BY seq LIMIT ?)",
                (batch, self.batch_size),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return int(batch or 0)

    def _too_old(self, oldest: str | None) -> bool:
        if oldest is None:
            return False
        waited = datetime.now(UTC) - datetime.fromisoformat(oldest)
        return waited.total_seconds() >= self.option_float("max_wait_seconds")

    def _rewrite_unwritten(self, conn: sqlite3.Connection) -> None:
        """Recovery: batches sealed in the state but not (fully) written get written again."""
        for (batch,) in conn.execute("SELECT id FROM batches WHERE written = 0").fetchall():
            self._write(conn, int(batch))

    def _write(self, conn: sqlite3.Connection, batch: int) -> Path:
        rows = conn.execute(
            "SELECT seq, body, reversal_of FROM entries WHERE batch = ? ORDER BY seq", (batch,)
        ).fetchall()
        entries = [
            (_REF.format(seq), json.loads(body), None if rev is None else _REF.format(rev))
            for seq, body, rev in rows
        ]
        sealed_at = conn.execute("SELECT sealed_at FROM batches WHERE id = ?", (batch,)).fetchone()
        stem = f"{self.prefix}-{batch:06d}"
        try:
            files = write_batch_files(
                self.outbound, stem, batch, entries, self.option_str("format")
            )
            manifest = manifest_for(batch, sealed_at[0], entries, files)
            path = self.outbound / f"{stem}.manifest.json"
            write_atomically(path, (json.dumps(manifest, indent=2) + "\n").encode())
        except OSError as exc:
            raise ErpUnavailableError(f"cannot write batch {stem}: {exc}") from exc
        conn.execute("UPDATE batches SET written = 1 WHERE id = ?", (batch,))
        return path
