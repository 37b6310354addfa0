"""The contract every ERP adapter must pass; #6's HTTP adapters reuse it unchanged.

Use it by subclassing in a ``test_*.py`` module and overriding two fixtures::

    class TestMyErpContract(ErpAdapterContract):
        @pytest.fixture
        def erp_adapter(self, tmp_path): ...          # healthy, knows CONTRACT_ACCOUNTS,
                                                      # CONTRACT_DATE is in an open period
        @pytest.fixture
        def unavailable_erp_adapter(self, tmp_path): ...  # every post fails transiently

Override :meth:`entry_count` when the ERP can count its entries, so that "creates nothing" is
checked directly rather than only through the idempotency key.
"""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.domain.journal import UnbalancedEntryError as DomainUnbalancedEntryError
from claimsync_console.erp.base import (
    AdapterCapabilities,
    AdapterHealth,
    AdapterOption,
    ErpAdapter,
    PermanentErpError,
    TransientErpError,
    UnbalancedEntryError,
    UnknownAccountError,
)

CASH = "1010"
RECEIVABLE = "1200"
ALLOWANCE = "4100"
PATIENT = "1300"
CONTRACT_ACCOUNTS = (CASH, RECEIVABLE, ALLOWANCE, PATIENT)
UNKNOWN_ACCOUNT = "9999-NOT-IN-CHART"
CONTRACT_DATE = date(2024, 3, 15)

_keys = itertools.count(1)


def fresh_key(prefix: str = "contract") -> str:
    return f"{prefix}-{next(_keys):06d}"


def payment_entry(
    key: str | None = None,
    *,
    paid: str = "70.00",
    allowance: str = "20.00",
    patient: str = "10.00",
    on: date = CONTRACT_DATE,
) -> JournalEntry:
    """The primer's worked example: $100 billed, $70 paid, CO-45 $20, PR-2 $10."""
    amounts = [Decimal(paid), Decimal(allowance), Decimal(patient)]
    return JournalEntry(
        idempotency_key=key or fresh_key(),
        entry_date=on,
        description="835 claim payment",
        reference="TRN-CONTRACT",
        lines=(
            JournalLine(CASH, debit=amounts[0], memo="cash"),
            JournalLine(ALLOWANCE, debit=amounts[1], cost_centre="CC-1", memo="CO-45"),
            JournalLine(PATIENT, debit=amounts[2], memo="PR-2"),
            JournalLine(RECEIVABLE, credit=sum(amounts, Decimal("0.00")), memo="receivable"),
        ),
    )


def _sides(lines: tuple[JournalLine, ...]) -> list[tuple[str, Decimal, Decimal]]:
    return [(line.account, line.debit, line.credit) for line in lines]


class ErpAdapterContract:
    """Behaviour the sync engine relies on, whatever the ERP behind the adapter."""

    @pytest.fixture
    def erp_adapter(self) -> ErpAdapter:
        raise NotImplementedError("override erp_adapter in the concrete test class")

    @pytest.fixture
    def unavailable_erp_adapter(self) -> ErpAdapter:
        raise NotImplementedError("override unavailable_erp_adapter in the concrete test class")

    def entry_count(self, adapter: ErpAdapter) -> int | None:
        """Number of entries in the ERP, or None when the ERP cannot say."""
        return None

    # ------------------------------------------------------------------ declaration

    def test_declares_name_capabilities_and_options(self, erp_adapter: ErpAdapter) -> None:
        assert isinstance(type(erp_adapter).name, str) and type(erp_adapter).name
        assert isinstance(erp_adapter.capabilities, AdapterCapabilities)
        assert all(isinstance(option, AdapterOption) for option in erp_adapter.options)
        secrets = [opt.name for opt in erp_adapter.options if opt.secret]
        shown = erp_adapter.redacted_settings()
        for name in secrets:
            assert shown[name] in ("", "********")

    def test_health_is_ok(self, erp_adapter: ErpAdapter) -> None:
        health = erp_adapter.health()
        assert isinstance(health, AdapterHealth)
        assert health.ok, health.detail
        assert health.latency >= 0

    # ------------------------------------------------------------------ posting

    def test_post_balanced_entry_and_read_it_back(self, erp_adapter: ErpAdapter) -> None:
        entry = payment_entry()
        result = erp_adapter.post_entry(entry)
        assert result.created is True
        assert result.erp_reference
        assert result.idempotency_key == entry.idempotency_key
        posted = erp_adapter.get_entry(result.erp_reference)
        assert posted is not None
        assert posted.erp_reference == result.erp_reference
        assert posted.idempotency_key == entry.idempotency_key
        assert posted.entry_date == entry.entry_date
        assert _sides(posted.lines) == _sides(entry.lines)
        assert posted.reversal_of is None

    def test_unknown_reference_reads_as_none(self, erp_adapter: ErpAdapter) -> None:
        assert erp_adapter.get_entry("no-such-reference-42") is None

    def test_repost_same_key_returns_same_reference_and_creates_nothing(
        self, erp_adapter: ErpAdapter
    ) -> None:
        entry = payment_entry()
        first = erp_adapter.post_entry(entry)
        before = self.entry_count(erp_adapter)
        again = erp_adapter.post_entry(entry)
        assert again.created is False
        assert again.erp_reference == first.erp_reference
        assert self.entry_count(erp_adapter) == before

    def test_post_entries_keeps_order(self, erp_adapter: ErpAdapter) -> None:
        entries = [payment_entry(paid=f"{n}.00") for n in (11, 12, 13)]
        results = erp_adapter.post_entries(entries)
        assert [r.idempotency_key for r in results] == [e.idempotency_key for e in entries]
        assert len({r.erp_reference for r in results}) == 3

    # ------------------------------------------------------------------ reversal

    def test_reverse_posts_the_mirror_idempotently(self, erp_adapter: ErpAdapter) -> None:
        if not erp_adapter.capabilities.supports_reversal:
            pytest.skip("adapter does not support reversal")
        entry = payment_entry()
        original = erp_adapter.post_entry(entry)
        key = fresh_key("reversal")
        reversal = erp_adapter.reverse_entry(original.erp_reference, key, CONTRACT_DATE)
        assert reversal.created is True
        assert reversal.erp_reference != original.erp_reference
        mirror = erp_adapter.get_entry(reversal.erp_reference)
        assert mirror is not None
        assert mirror.reversal_of == original.erp_reference
        assert _sides(mirror.lines) == [(a, c, d) for a, d, c in _sides(entry.lines)]
        again = erp_adapter.reverse_entry(original.erp_reference, key, CONTRACT_DATE)
        assert (again.erp_reference, again.created) == (reversal.erp_reference, False)

    def test_reversing_an_unknown_reference_is_permanent(self, erp_adapter: ErpAdapter) -> None:
        if not erp_adapter.capabilities.supports_reversal:
            pytest.skip("adapter does not support reversal")
        with pytest.raises(PermanentErpError) as caught:
            erp_adapter.reverse_entry("no-such-reference-42", fresh_key(), CONTRACT_DATE)
        assert caught.value.retryable is False

    # ------------------------------------------------------------------ rejections

    def test_unknown_account_is_a_permanent_error(self, erp_adapter: ErpAdapter) -> None:
        base = payment_entry()
        lines = (JournalLine(UNKNOWN_ACCOUNT, debit=Decimal("70.00")), *base.lines[1:])
        entry = JournalEntry(base.idempotency_key, base.entry_date, "cash to nowhere", lines)
        assert entry.is_balanced  # the only thing wrong with it is the account
        with pytest.raises(UnknownAccountError) as caught:
            erp_adapter.post_entry(entry)
        assert isinstance(caught.value, PermanentErpError)
        assert caught.value.retryable is False
        assert caught.value.retry_after is None
        assert UNKNOWN_ACCOUNT in str(caught.value)
        assert erp_adapter.post_entry(base).created is True  # the refusal recorded nothing

    def test_unbalanced_entry_is_rejected_before_it_is_sent(
        self, erp_adapter: ErpAdapter, unavailable_erp_adapter: ErpAdapter
    ) -> None:
        good = payment_entry()
        bad = JournalEntry(
            good.idempotency_key,
            good.entry_date,
            good.description,
            (*good.lines[:-1], JournalLine(RECEIVABLE, credit=Decimal("99.99"))),
        )
        # An unreachable ERP still answers "unbalanced": the check ran before any I/O.
        with pytest.raises(UnbalancedEntryError):
            unavailable_erp_adapter.post_entry(bad)
        before = self.entry_count(erp_adapter)
        with pytest.raises(UnbalancedEntryError) as caught:
            erp_adapter.post_entry(bad)
        assert caught.value.retryable is False
        assert isinstance(caught.value, DomainUnbalancedEntryError)
        assert self.entry_count(erp_adapter) == before
        # Nothing was recorded under the key: the corrected entry is a first posting.
        assert erp_adapter.post_entry(good).created is True

    def test_transient_failure_is_a_retryable_error(
        self, unavailable_erp_adapter: ErpAdapter
    ) -> None:
        with pytest.raises(TransientErpError) as caught:
            unavailable_erp_adapter.post_entry(payment_entry())
        assert caught.value.retryable is True
        assert not isinstance(caught.value, PermanentErpError)
        assert unavailable_erp_adapter.health().ok is False
