"""The protocol's own rules: error classification, option parsing and entry validation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.domain.journal import UnbalancedEntryError as DomainUnbalancedEntryError
from claimsync_console.erp.base import (
    AdapterConfigError,
    AdapterHealth,
    AdapterOption,
    AlreadyReversedError,
    ClosedPeriodError,
    ErpAdapter,
    ErpError,
    ErpUnavailableError,
    IdempotencyConflictError,
    InvalidEntryError,
    PermanentErpError,
    PostedEntry,
    PostingResult,
    RateLimitedError,
    TransientErpError,
    UnbalancedEntryError,
    UnknownAccountError,
    UnknownEntryError,
    resolve_options,
    validate_entry,
)

PERMANENT = [
    InvalidEntryError,
    UnbalancedEntryError,
    UnknownAccountError,
    ClosedPeriodError,
    UnknownEntryError,
    AlreadyReversedError,
    IdempotencyConflictError,
]


@pytest.mark.parametrize("error_class", PERMANENT)
def test_permanent_errors_are_never_retried(error_class: type[PermanentErpError]) -> None:
    error = error_class("why")
    assert isinstance(error, ErpError)
    assert (error.retryable, error.retry_after, str(error)) == (False, None, "why")


@pytest.mark.parametrize("error_class", [TransientErpError, ErpUnavailableError, RateLimitedError])
def test_transient_errors_are_retried_and_carry_retry_after(
    error_class: type[TransientErpError],
) -> None:
    error = error_class("busy", retry_after=30.0)
    assert (error.retryable, error.retry_after) == (True, 30.0)
    assert not isinstance(error, PermanentErpError)


def test_error_codes_are_distinct() -> None:
    classes: list[type[ErpError]] = [
        *PERMANENT,
        TransientErpError,
        ErpUnavailableError,
        RateLimitedError,
    ]
    assert len({cls.code for cls in classes}) == len(classes)


def test_unbalanced_is_also_the_domain_error() -> None:
    with pytest.raises(DomainUnbalancedEntryError):
        raise UnbalancedEntryError("debits 1 != credits 2")


OPTIONS = (
    AdapterOption("url", str, required=True, help="base URL"),
    AdapterOption("token", str, secret=True, default=""),
    AdapterOption("timeout", float, default=10.0),
    AdapterOption("batch", int, default=1),
    AdapterOption("verify", bool, default=True),
    AdapterOption("mode", str, default="a", choices=("a", "b")),
)


def test_options_parse_text_and_fill_defaults() -> None:
    values = resolve_options(
        OPTIONS, {"url": "https://erp", "timeout": "2.5", "batch": "50", "verify": "no"}
    )
    assert values == {
        "url": "https://erp",
        "token": "",
        "timeout": 2.5,
        "batch": 50,
        "verify": False,
        "mode": "a",
    }


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "required"),
        ({"url": "u", "colour": "red"}, "unknown option"),
        ({"url": "u", "batch": "many"}, "not a valid int"),
        ({"url": "u", "batch": True}, "expected int"),
        ({"url": "u", "verify": "perhaps"}, "not a boolean"),
        ({"url": "u", "mode": "c"}, "not one of"),
    ],
)
def test_bad_options_are_config_errors(given: dict[str, object], message: str) -> None:
    with pytest.raises(AdapterConfigError, match=message):
        resolve_options(OPTIONS, given)


def test_secrets_are_masked_for_display() -> None:
    token = OPTIONS[1]
    assert token.display("s3cr3t") == "********"
    assert token.display("") == ""
    assert OPTIONS[2].display(2.5) == "2.5"


def _entry(*lines: JournalLine, key: str = "k-1") -> JournalEntry:
    return JournalEntry(key, date(2024, 1, 2), "t", lines)


def test_validate_accepts_the_primer_example() -> None:
    validate_entry(
        _entry(
            JournalLine("1010", debit=Decimal("70.00")),
            JournalLine("4100", debit=Decimal("20.00")),
            JournalLine("1300", debit=Decimal("10.00")),
            JournalLine("1200", credit=Decimal("100.00")),
        )
    )


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (
            _entry(JournalLine("1010", debit=Decimal(1)), JournalLine("1200", credit=Decimal(2))),
            UnbalancedEntryError,
        ),
        (
            _entry(JournalLine("1010", debit=Decimal(1)), JournalLine("", credit=Decimal(1))),
            InvalidEntryError,
        ),
        (
            _entry(
                JournalLine("1010", debit=Decimal("NaN")), JournalLine("1200", credit=Decimal(1))
            ),
            InvalidEntryError,
        ),
        (
            _entry(
                JournalLine("1010", debit=Decimal(1)),
                JournalLine("1200", credit=Decimal(1)),
                key=" ",
            ),
            InvalidEntryError,
        ),
        (_entry(), UnbalancedEntryError),
    ],
)
def test_validate_rejects(entry: JournalEntry, error: type[ErpError]) -> None:
    with pytest.raises(error):
        validate_entry(entry)


class _Counting(ErpAdapter):
    """A minimal real adapter: refuses the entry whose key ends in 'x'."""

    name = "counting"

    def __init__(self) -> None:
        super().__init__({})
        self.posted: list[str] = []

    def post_entry(self, entry: JournalEntry) -> PostingResult:
        if entry.idempotency_key.endswith("x"):
            raise UnknownAccountError("no")
        self.posted.append(entry.idempotency_key)
        return PostingResult(f"ref-{entry.idempotency_key}", True, entry.idempotency_key)

    def reverse_entry(self, erp_reference: str, idempotency_key: str, on: date) -> PostingResult:
        raise UnknownEntryError(erp_reference)

    def get_entry(self, erp_reference: str) -> PostedEntry | None:
        return None

    def health(self) -> AdapterHealth:
        return AdapterHealth(True, "", 0.0)


def test_default_post_entries_stops_at_the_first_error() -> None:
    adapter = _Counting()
    line = (JournalLine("1", debit=Decimal(1)), JournalLine("2", credit=Decimal(1)))
    entries = [_entry(*line, key=k) for k in ("a", "bx", "c")]
    with pytest.raises(UnknownAccountError):
        adapter.post_entries(entries)
    assert adapter.posted == ["a"]


def test_an_incomplete_adapter_cannot_be_built() -> None:
    class Incomplete(ErpAdapter):
        name = "incomplete"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]
