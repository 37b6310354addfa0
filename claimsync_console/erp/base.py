"""The ERP adapter protocol: what the sync engine needs from any general ledger.

Every adapter (the embedded ledger here, HTTP ERPs in #6) implements :class:`ErpAdapter`.
The engine never inspects an adapter's type: it reads the capability flags, and it decides
between retry and dead letter from :attr:`ErpError.retryable` alone, so a new adapter only has
to classify its failures correctly to get backoff, circuit breaking and dead letters for free.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Final

from claimsync_console.domain.common import CENT, ZERO
from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.domain.journal import UnbalancedEntryError as _DomainUnbalancedEntryError

# --------------------------------------------------------------------------- errors


class ErpError(Exception):
    """Any failure reported by an adapter; ``retryable`` is the only thing the outbox reads."""

    code: ClassVar[str] = "erp_error"

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after  # seconds, as the ERP asked (HTTP Retry-After)

    def __str__(self) -> str:
        return self.message


class TransientErpError(ErpError):
    """Worth retrying later: the same request may succeed without anyone changing anything."""

    code: ClassVar[str] = "transient"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message, retryable=True, retry_after=retry_after)


class PermanentErpError(ErpError):
    """Retrying the same request cannot help: a person must fix data or configuration first."""

    code: ClassVar[str] = "permanent"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, retry_after=None)


class ErpUnavailableError(TransientErpError):
    """The ERP cannot be reached or answered 5xx."""

    code: ClassVar[str] = "unavailable"


class RateLimitedError(TransientErpError):
    """The ERP throttled us; ``retry_after`` says when to come back."""

    code: ClassVar[str] = "rate_limited"


class InvalidEntryError(PermanentErpError):
    """The entry itself is malformed (too few lines, sub-cent amounts, empty account...)."""

    code: ClassVar[str] = "invalid_entry"


class UnbalancedEntryError(InvalidEntryError, _DomainUnbalancedEntryError):
    """Debits differ from credits; also a domain ``UnbalancedEntryError`` so either catch works."""

    code: ClassVar[str] = "unbalanced_entry"


class UnknownAccountError(PermanentErpError):
    """An account code is not in the chart, or is inactive."""

    code: ClassVar[str] = "unknown_account"


class ClosedPeriodError(PermanentErpError):
    """The entry date falls in a closed period, or in no period at all."""

    code: ClassVar[str] = "closed_period"


class UnknownEntryError(PermanentErpError):
    """A reversal named an ERP reference that the ERP does not know."""

    code: ClassVar[str] = "unknown_entry"


class AlreadyReversedError(PermanentErpError):
    """The entry was already reversed under another idempotency key."""

    code: ClassVar[str] = "already_reversed"


class IdempotencyConflictError(PermanentErpError):
    """The key was already used for different content: a bug in key derivation, never retried."""

    code: ClassVar[str] = "idempotency_conflict"


class AdapterConfigError(ValueError):
    """Bad adapter options; raised at construction time, before any posting."""


# --------------------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True)
class AdapterCapabilities:
    """What the engine may ask of an adapter; it degrades instead of probing at run time."""

    supports_reversal: bool = True
    supports_batch: bool = False
    supports_idempotency_keys: bool = True
    supports_periods: bool = False
    supports_cost_centres: bool = True
    max_batch_size: int = 1


@dataclass(frozen=True, slots=True)
class PostingResult:
    """``created`` is False when the idempotency key had already been posted."""

    erp_reference: str
    created: bool
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """An entry as the ERP holds it, read back for verification and reversal."""

    erp_reference: str
    idempotency_key: str
    entry_date: date
    description: str
    reference: str
    lines: tuple[JournalLine, ...]
    reversal_of: str | None = None
    reversed_by: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AdapterHealth:
    """``latency`` is in seconds (a duration, not money, so float is fine)."""

    ok: bool
    detail: str
    latency: float


_NO_DEFAULT: Final = object()
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True, slots=True)
class AdapterOption:
    """One configuration option, declared as data so the CLI and console can list and mask it."""

    name: str
    type: type = str
    secret: bool = False
    help: str = ""
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()

    def coerce(self, value: object) -> object:
        """Accept the declared type, or its text form (TOML, environment and CLI give strings)."""
        if isinstance(value, self.type) and not (self.type is int and isinstance(value, bool)):
            result: object = value
        elif isinstance(value, str):
            result = self._parse(value.strip())
        else:
            raise AdapterConfigError(
                f"option {self.name!r}: expected {self.type.__name__}, got {type(value).__name__}"
            )
        if self.choices and result not in self.choices:
            allowed = ", ".join(map(repr, self.choices))
            raise AdapterConfigError(f"option {self.name!r}: {result!r} is not one of {allowed}")
        return result

    def _parse(self, text: str) -> object:
        if self.type is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise AdapterConfigError(f"option {self.name!r}: {text!r} is not a boolean")
        try:
            return self.type(text)
        except (ValueError, ArithmeticError) as exc:
            raise AdapterConfigError(
                f"option {self.name!r}: {text!r} is not a valid {self.type.__name__}"
            ) from exc

    def display(self, value: object) -> str:
        """Text for logs and the console; secrets never leave as clear text."""
        if self.secret and value not in (None, ""):
            return "********"
        return "" if value is None else str(value)


def resolve_options(
    declared: Iterable[AdapterOption], given: Mapping[str, object]
) -> dict[str, object]:
    """Validate a mapping against the declared options; unknown names are errors, not ignored."""
    by_name = {option.name: option for option in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise AdapterConfigError(
            f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(by_name))}"
        )
    resolved: dict[str, object] = {}
    for name, option in by_name.items():
        if name in given and given[name] is not None:
            resolved[name] = option.coerce(given[name])
        elif option.required:
            raise AdapterConfigError(f"option {name!r} is required: {option.help}")
        else:
            resolved[name] = option.default
    return resolved


# --------------------------------------------------------------------------- validation


def validate_entry(entry: JournalEntry) -> None:
    """Reject a malformed entry before any I/O, so nothing half-valid ever reaches an ERP."""
    key = entry.idempotency_key
    if not key.strip():
        raise InvalidEntryError("entry has an empty idempotency key")
    if len(entry.lines) < 2:
        raise UnbalancedEntryError(f"entry {key}: needs at least 2 lines, has {len(entry.lines)}")
    for number, line in enumerate(entry.lines, start=1):
        _validate_line(key, number, line)
    if entry.total_debit != entry.total_credit:
        raise UnbalancedEntryError(
            f"entry {key}: debits {entry.total_debit} != credits {entry.total_credit}"
        )


def _validate_line(key: str, number: int, line: JournalLine) -> None:
    if not line.account.strip():
        raise InvalidEntryError(f"entry {key} line {number}: empty account")
    for side, amount in (("debit", line.debit), ("credit", line.credit)):
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise InvalidEntryError(f"entry {key} line {number}: {side} is not a finite Decimal")
        if amount < ZERO:
            raise UnbalancedEntryError(f"entry {key} line {number}: negative {side} {amount}")
        if amount != amount.quantize(CENT):
            raise InvalidEntryError(f"entry {key} line {number}: {side} {amount} has sub-cents")
    if (line.debit > ZERO) == (line.credit > ZERO):
        raise InvalidEntryError(
            f"entry {key} line {number}: exactly one of debit and credit must be non-zero"
        )


# --------------------------------------------------------------------------- the protocol


class ErpAdapter(abc.ABC):
    """Base class for every ERP adapter; constructed from a mapping of option values."""

    name: ClassVar[str]
    capabilities: ClassVar[AdapterCapabilities] = AdapterCapabilities()
    options: ClassVar[tuple[AdapterOption, ...]] = ()

    def __init__(self, options: Mapping[str, object] | None = None) -> None:
        self.settings: dict[str, object] = resolve_options(type(self).options, options or {})

    def option_str(self, name: str) -> str:
        value = self.settings[name]
        return "" if value is None else str(value)

    def option_float(self, name: str) -> float:
        value = self.settings[name]
        return float(value) if isinstance(value, int | float) else 0.0

    def redacted_settings(self) -> dict[str, str]:
        """Options as text with secrets masked, for status screens and logs."""
        return {opt.name: opt.display(self.settings.get(opt.name)) for opt in type(self).options}

    @abc.abstractmethod
    def post_entry(self, entry: JournalEntry) -> PostingResult:
        """Post one balanced entry; re-posting its idempotency key returns ``created=False``."""

    @abc.abstractmethod
    def reverse_entry(
        self, erp_reference: str, idempotency_key: str, reversal_date: date
    ) -> PostingResult:
        """Post the mirror of an entry (debits and credits swapped), idempotent by key."""

    @abc.abstractmethod
    def get_entry(self, erp_reference: str) -> PostedEntry | None:
        """Read an entry back; None when the reference is unknown."""

    @abc.abstractmethod
    def health(self) -> AdapterHealth:
        """Cheap liveness probe; must not raise, the dashboard calls it on a timer."""

    def post_entries(self, entries: Iterable[JournalEntry]) -> list[PostingResult]:
        """Post several entries; stops at the first error (earlier ones stay posted, retry is
        safe because of the idempotency keys). Batching adapters override this."""
        return [self.post_entry(entry) for entry in entries]

    def post_each(self, entries: Iterable[JournalEntry]) -> list[PostingResult | ErpError]:
        """One outcome per entry, in order: its result, or the error that refused it. The
        outbox's batched posting needs this, because ``post_entries`` stops at the first refusal
        and loses the results before it. A failure that says nothing about any one entry (the
        ERP is down or throttling) is raised instead, so the whole batch backs off.

        The default calls ``post_entries`` once; only when the ERP refuses an entry does it
        post them one by one to learn which (safe: the idempotency keys make the entries the
        batch call already posted answer ``created=False``), and after a transient failure
        there it gives the same error to the rest instead of calling a failing ERP again.
        Adapters whose batch reply carries per-entry outcomes may override it."""
        todo = list(entries)
        try:
            results = self.post_entries(todo)
        except ErpError as exc:
            if exc.retryable:
                raise
        else:
            if len(results) != len(todo):
                raise ErpUnavailableError(f"ERP answered {len(results)} of {len(todo)} entries")
            return list(results)
        outcomes: list[PostingResult | ErpError] = []
        down: ErpError | None = None
        for entry in todo:
            if down is not None:
                outcomes.append(down)
                continue
            try:
                outcomes.append(self.post_entry(entry))
            except ErpError as exc:
                outcomes.append(exc)
                down = exc if exc.retryable else None
        return outcomes

    def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing open
        """Release connections; the default adapter holds none between calls."""
