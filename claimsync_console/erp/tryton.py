"""Tryton (a real open-source ERP) as a ClaimSync ERP adapter, over its JSON-RPC.

A posting is a Tryton ``account.move`` created with its period set explicitly and then posted;
a reversal goes through Tryton's own ``account.move.cancel`` wizard so that Tryton links the two
moves (``origin``) the way its users expect. Batches create N moves in one call and post them
in another, which is what takes throughput from ~25 moves/s to several hundred.

Choices that are not obvious, and why (see also docs/tryton.md):

* Balance is checked here, before any I/O: trytond 8.2 on SQLite posts an unbalanced move.
* Idempotency: the key is stored in the move description and searched before creating. A move
  found in draft (we died between create and post) is posted, not duplicated.
* A batch is one transaction in Tryton. When Tryton refuses one move of it, the batch is
  replayed one move at a time, so the moves before the bad one post and the bad one raises,
  as :meth:`ErpAdapter.post_entries` promises.
* ``parallel_requests`` > 1 sends chunks concurrently, to several trytond processes when ``url``
  lists several (rules in :mod:`tryton_parallel`); posts stay one at a time.
* ``UserWarning`` is refused (permanent, naming the warning) unless its name matches one of
  the ``accept_warnings`` patterns: confirming a warning is an accounting decision, so it is
  configuration, never a default.
"""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from claimsync_console.domain.journal import JournalEntry
from claimsync_console.erp import tryton_moves as moves
from claimsync_console.erp import tryton_parallel as parallel
from claimsync_console.erp.base import (
    AdapterCapabilities,
    AdapterConfigError,
    AdapterHealth,
    AdapterOption,
    AlreadyReversedError,
    ErpAdapter,
    ErpError,
    IdempotencyConflictError,
    InvalidEntryError,
    PermanentErpError,
    PostedEntry,
    PostingResult,
    UnknownEntryError,
    validate_entry,
)
from claimsync_console.erp.tryton_chart import TrytonChart
from claimsync_console.erp.tryton_rpc import TrytonRpc, TrytonWarning

PASSWORD_ENV = "CLAIMSYNC_ADAPTER_TRYTON_PASSWORD"  # derived by erp.adapter_config


class TrytonAdapter(ErpAdapter):
    """Posts journal entries as Tryton account moves; see the module docstring."""

    name: ClassVar[str] = "tryton"
    capabilities: ClassVar[AdapterCapabilities] = AdapterCapabilities(
        supports_reversal=True,
        supports_batch=True,
        supports_idempotency_keys=True,
        supports_periods=True,
        supports_cost_centres=False,
        max_batch_size=100,
    )
    options: ClassVar[tuple[AdapterOption, ...]] = (
        AdapterOption(
            "url",
            str,
            required=True,
            help="trytond base URL, e.g. http://erp:8000; comma-separated for several processes",
        ),
        AdapterOption("database", str, required=True, help="Tryton database name"),
        AdapterOption("login", str, default="admin", help="Tryton user ClaimSync posts as"),
        AdapterOption(
            "password",
            str,
            secret=True,
            default="",
            help=f"the user's password: from the environment ({PASSWORD_ENV}) or password_file",
        ),
        AdapterOption(
            "password_file", str, default="", help="file holding the password (first line)"
        ),
        AdapterOption(
            "company", str, default="", help="company name or id; empty: the user's company"
        ),
        AdapterOption("journal", str, default="MISC", help="code of the journal moves go to"),
        AdapterOption("batch_size", int, default=100, help="moves per create/post call"),
        AdapterOption(
            "parallel_requests", int, default=1, help="chunks of a batch sent at once (1-8)"
        ),
        AdapterOption("timeout", float, default=30.0, help="seconds per HTTP request"),
        AdapterOption(
            "accept_warnings",
            str,
            default="",
            help="comma-separated patterns of Tryton warning names to confirm, e.g. '*.cancel'",
        ),
    )

    def __init__(self, options: Mapping[str, object] | None = None) -> None:
        super().__init__(options)
        batch_size = self.settings["batch_size"]
        self.batch_size = batch_size if isinstance(batch_size, int) else 100
        if not 1 <= self.batch_size <= 1000:
            raise AdapterConfigError("option 'batch_size' must be between 1 and 1000")
        self.accept_warnings = [
            p.strip() for p in self.option_str("accept_warnings").split(",") if p.strip()
        ]
        parallel_requests = self.settings["parallel_requests"]
        self.parallel = parallel_requests if isinstance(parallel_requests, int) else 1
        if not 1 <= self.parallel <= 8:
            raise AdapterConfigError("option 'parallel_requests' must be between 1 and 8")
        self.rpcs = parallel.clients(
            self.option_str("url"),
            self.option_str("database"),
            self.option_str("login"),
            self._password(),
            self.option_float("timeout"),
        )
        self._local = threading.local()  # which of ``rpcs`` this thread's requests go to
        self._post_lock = threading.Lock()
        self._next_client = itertools.count()
        self.chart = TrytonChart(
            self.rpcs[0], self.option_str("company"), self.option_str("journal")
        )

    @property
    def rpc(self) -> TrytonRpc:
        """The client for the current thread's chunk; else the thread's own, given round robin
        on its first request, so that engine workers sharing this adapter on several threads
        spread over the trytond processes in ``url`` (one process runs on one core)."""
        chosen: TrytonRpc | None = getattr(self._local, "rpc", None)
        if chosen is not None:
            return chosen
        home: TrytonRpc | None = getattr(self._local, "home", None)
        if home is None:
            home = self.rpcs[next(self._next_client) % len(self.rpcs)]
            self._local.home = home
        return home

    def _password(self) -> str:
        """From ``password`` (the config layer fills it from the environment only) or from
        ``password_file``; handed to the RPC client, never logged or shown."""
        path = self.option_str("password_file")
        if path:
            try:
                return Path(path).read_text(encoding="utf-8").splitlines()[0].strip()
            except (OSError, IndexError) as exc:
                raise AdapterConfigError(f"option 'password_file': cannot read {path}") from exc
        return self.option_str("password")

    def close(self) -> None:
        for rpc in self.rpcs:
            rpc.close()

    # ------------------------------------------------------------------ the ERP API

    def post_entry(self, entry: JournalEntry) -> PostingResult:
        return self.post_entries([entry])[0]

    def post_entries(self, entries: Iterable[JournalEntry]) -> list[PostingResult]:
        pending = list(entries)
        chunks = [pending[s : s + self.batch_size] for s in range(0, len(pending), self.batch_size)]
        keys = [entry.idempotency_key for entry in pending]
        if self.parallel > 1 and len(chunks) > 1 and parallel.keys_unique(keys):
            self.chart.setup()  # once, before the threads share it
            return parallel.run_chunks(chunks, self._post_chunk_on, self.parallel)
        return [result for chunk in chunks for result in self._post_chunk(chunk)]

    def _post_chunk_on(self, index: int, chunk: Sequence[JournalEntry]) -> list[PostingResult]:
        """On a worker thread: chunk ``index`` goes to the ``index``-th URL, round robin."""
        self._local.rpc = self.rpcs[index % len(self.rpcs)]
        try:
            return self._post_chunk(chunk)
        finally:
            self._local.rpc = None

    def reverse_entry(
        self, erp_reference: str, idempotency_key: str, reversal_date: date
    ) -> PostingResult:
        """Through Tryton's cancel wizard, which takes no date: the reversal gets the original's
        date, or today's when the original's period is closed (after a warning, see
        ``accept_warnings``). ``reversal_date`` is therefore not sent (docs/tryton.md)."""
        if not idempotency_key.strip():
            raise InvalidEntryError("reversal has an empty idempotency key")
        move_id = moves.parse_reference(erp_reference)
        original = None if move_id is None else self._read([move_id]).get(move_id)
        if move_id is None or original is None:
            raise UnknownEntryError(f"no Tryton move {erp_reference!r}")
        existing = self._find_keys([idempotency_key]).get(idempotency_key)
        if existing is not None:
            return PostingResult(moves.move_reference(existing[0]), False, idempotency_key)
        if original.reversal_of is not None:
            raise InvalidEntryError(f"{erp_reference} is itself a reversal; post a new entry")
        if original.reversed_by is not None:
            raise AlreadyReversedError(
                f"{erp_reference} was already reversed by {original.reversed_by}"
            )
        text = moves.describe(f"Reversal of {erp_reference}", original.reference, idempotency_key)
        self._with_warnings(lambda: self._run_cancel_wizard(move_id, text))
        created = self._find_keys([idempotency_key]).get(idempotency_key)
        if created is None:
            raise PermanentErpError(f"Tryton's cancel wizard made no move for {erp_reference}")
        return PostingResult(moves.move_reference(created[0]), True, idempotency_key)

    def get_entry(self, erp_reference: str) -> PostedEntry | None:
        move_id = moves.parse_reference(erp_reference)
        return None if move_id is None else self._read([move_id]).get(move_id)

    def health(self) -> AdapterHealth:
        started = time.perf_counter()
        try:
            self.chart.setup()
            periods = self.chart.open_periods()
        except ErpError as exc:
            return AdapterHealth(False, f"Tryton: {exc}", time.perf_counter() - started)
        except Exception as exc:  # the dashboard calls this on a timer: never raise
            detail = f"Tryton: unexpected {type(exc).__name__}: {exc}"
            return AdapterHealth(False, detail, time.perf_counter() - started)
        detail = f"Tryton {self.rpc.database}: company {self.chart.company}, {periods} open periods"
        return AdapterHealth(True, detail, time.perf_counter() - started)

    def entry_count(self) -> int:
        """Moves in the company (tests and checks: "a re-post creates nothing")."""
        return int(self.rpc.call("model.account.move.search_count", [], self.chart.ctx()))

    # ------------------------------------------------------------------ posting internals

    def _post_chunk(self, chunk: Sequence[JournalEntry]) -> list[PostingResult]:
        """Post a chunk in as few calls as possible; on a refusal, earlier entries stay posted
        (the checks find the first bad entry and post only those before it)."""
        found, failure = self._check_chunk(chunk)
        if failure is not None:
            index, error = failure
            if index:
                self._post_chunk(chunk[:index])
            raise error
        fresh: dict[str, JournalEntry] = {}
        for entry in chunk:
            if entry.idempotency_key not in found:
                fresh.setdefault(entry.idempotency_key, entry)
        drafts = [move_id for move_id, state in found.values() if state == "draft"]
        created: list[int] = []
        try:
            created = self._create(list(fresh.values()))
            if created or drafts:
                with self._post_lock:  # posts lock the move sequence NOWAIT: never two at once
                    self.rpc.call("model.account.move.post", [*drafts, *created], self.chart.ctx())
        except PermanentErpError:
            if len(chunk) > 1:  # find the culprit; the drafts are found and posted one by one
                return [result for entry in chunk for result in self._post_chunk([entry])]
            self._discard(created)
            raise
        ids = dict(zip(fresh, created, strict=True))
        ids.update((key, move_id) for key, (move_id, _state) in found.items())
        results: list[PostingResult] = []
        seen: set[str] = set()
        for entry in chunk:
            key = entry.idempotency_key
            results.append(
                PostingResult(moves.move_reference(ids[key]), _first(key, fresh, seen), key)
            )
        return results

    def _discard(self, move_ids: list[int]) -> None:
        """Delete the drafts of a refused posting, so a refusal leaves nothing behind; if even
        that fails, the draft stays and the next attempt finds it by its key."""
        if move_ids:
            with contextlib.suppress(ErpError):
                self.rpc.call("model.account.move.delete", move_ids, self.chart.ctx())

    def _check_chunk(
        self, chunk: Sequence[JournalEntry]
    ) -> tuple[dict[str, tuple[int, str]], tuple[int, ErpError] | None]:
        """The keys already in Tryton, and the first entry that must be refused (balance before
        any I/O; then accounts and period for new entries, content for replayed ones)."""
        for index, entry in enumerate(chunk):
            try:
                validate_entry(entry)
            except ErpError as error:
                return {}, (index, error)
        self.chart.setup()
        self.chart.load_accounts({line.account for entry in chunk for line in entry.lines})
        found = self._find_keys([entry.idempotency_key for entry in chunk])
        stored = self._lines(sorted({move_id for move_id, _state in found.values()}))
        for index, entry in enumerate(chunk):
            try:
                if entry.idempotency_key in found:
                    self._check_replay(entry, found[entry.idempotency_key][0], stored)
                else:
                    self.chart.check_accounts(entry)
                    self.chart.period_for(entry.entry_date)
            except ErpError as error:
                return found, (index, error)
        return found, None

    def _create(self, entries: Sequence[JournalEntry]) -> list[int]:
        if not entries:
            return []
        company, journal = self.chart.company, self.chart.journal
        assert company is not None and journal is not None
        values = [
            moves.move_values(
                entry,
                moves.describe(entry.description, entry.reference, entry.idempotency_key),
                company=company,
                journal=journal,
                period=self.chart.period_for(entry.entry_date),
                accounts=self.chart.accounts,
            )
            for entry in entries
        ]
        return [
            int(i) for i in self.rpc.call("model.account.move.create", values, self.chart.ctx())
        ]

    @staticmethod
    def _check_replay(entry: JournalEntry, move_id: int, stored: dict[int, list[Any]]) -> None:
        """A key already used for other amounts or accounts is a bug upstream, never a retry."""
        if moves.sides(stored.get(move_id, [])) != moves.sides(entry.lines):
            raise IdempotencyConflictError(
                f"idempotency key {entry.idempotency_key} was already used by "
                f"{moves.move_reference(move_id)} for other content"
            )

    def _find_keys(self, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        """Key -> (move id, state) for the keys already in Tryton, in one search."""
        wanted = set(keys)
        rows = self.rpc.call(
            "model.account.move.search_read",
            moves.key_domain(sorted(wanted)),
            0,
            None,
            [("id", "ASC")],
            ["description", "state"],
            self.chart.ctx(),
        )
        found: dict[str, tuple[int, str]] = {}
        for row in rows:
            key = moves.key_of(row.get("description"))
            if key in wanted and key not in found:
                found[key] = (int(row["id"]), str(row.get("state")))
        return found

    # ------------------------------------------------------------------ reversal internals

    def _run_cancel_wizard(self, move_id: int, description: str) -> None:
        ctx = {**self.chart.ctx(), "active_model": "account.move"}
        ctx.update(active_id=move_id, active_ids=[move_id])
        session = self.rpc.call("wizard.account.move.cancel.create", ctx)[0]
        try:
            data = {"default": {"description": description, "reversal": True}}
            self.rpc.call("wizard.account.move.cancel.execute", session, data, "cancel", ctx)
        finally:
            self.rpc.call("wizard.account.move.cancel.delete", session, ctx)

    def _with_warnings(self, action: Any) -> None:
        """Run ``action``; confirm a Tryton warning once if configured to, else refuse it."""
        try:
            action()
        except TrytonWarning as warning:
            if not any(fnmatch.fnmatchcase(warning.name, p) for p in self.accept_warnings):
                raise
            values = {"user": self.rpc.user_id, "name": warning.name, "always": False}
            self.rpc.call("model.res.user.warning.create", [values], self.chart.ctx())
            action()

    # ------------------------------------------------------------------ reading

    def _read(self, move_ids: list[int]) -> dict[int, PostedEntry]:
        return moves.read_moves(self.rpc, self.chart.ctx(), move_ids)

    def _lines(self, move_ids: list[int]) -> dict[int, list[Any]]:
        return moves.read_lines(self.rpc, self.chart.ctx(), move_ids)


def _first(key: str, fresh: Mapping[str, JournalEntry], seen: set[str]) -> bool:
    """True for the first entry of a chunk that created ``key``'s move; a repeat is a replay."""
    created = key in fresh and key not in seen
    seen.add(key)
    return created
