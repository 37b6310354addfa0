"""The embedded ledger: the adapter contract, then what only a real ledger can be asked."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.erp.base import (
    AdapterConfigError,
    AlreadyReversedError,
    ClosedPeriodError,
    ErpAdapter,
    ErpUnavailableError,
    IdempotencyConflictError,
    InvalidEntryError,
    PostingResult,
    RateLimitedError,
    UnknownAccountError,
)
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.erp.ledger_schema import DEFAULT_CHART
from tests.erp.contract import (
    ALLOWANCE,
    CASH,
    CONTRACT_DATE,
    PATIENT,
    RECEIVABLE,
    ErpAdapterContract,
    fresh_key,
    payment_entry,
)

ZERO = Decimal("0.00")


def make_ledger(path: Path, **options: object) -> LedgerAdapter:
    ledger = LedgerAdapter({"path": str(path), **options})
    ledger.bootstrap_chart(DEFAULT_CHART, year=CONTRACT_DATE.year)
    return ledger


@pytest.fixture
def ledger(tmp_path: Path) -> LedgerAdapter:
    return make_ledger(tmp_path / "ledger.sqlite3")


class TestLedgerContract(ErpAdapterContract):
    @pytest.fixture
    def erp_adapter(self, tmp_path: Path) -> ErpAdapter:
        return make_ledger(tmp_path / "contract.sqlite3")

    @pytest.fixture
    def unavailable_erp_adapter(self, tmp_path: Path) -> ErpAdapter:
        return make_ledger(tmp_path / "down.sqlite3", fail_mode="unavailable")

    def entry_count(self, adapter: ErpAdapter) -> int | None:
        assert isinstance(adapter, LedgerAdapter)
        return adapter.entry_count()


# ---------------------------------------------------------------------- periods


def test_closed_period_refuses_posting_and_reopening_allows_it(ledger: LedgerAdapter) -> None:
    ledger.close_period(CONTRACT_DATE)
    entry = payment_entry()
    with pytest.raises(ClosedPeriodError, match="closed") as caught:
        ledger.post_entry(entry)
    assert caught.value.retryable is False
    assert ledger.entry_count() == 0
    # The neighbouring month is still open.
    assert ledger.post_entry(payment_entry(on=date(2024, 4, 1))).created
    ledger.reopen_period(CONTRACT_DATE)
    assert ledger.post_entry(entry).created  # the dead letter's retry now succeeds


def test_a_date_in_no_period_is_refused(ledger: LedgerAdapter) -> None:
    with pytest.raises(ClosedPeriodError, match="no accounting period"):
        ledger.post_entry(payment_entry(on=date(2031, 1, 2)))


def test_reversal_into_a_closed_period_is_refused(ledger: LedgerAdapter) -> None:
    original = ledger.post_entry(payment_entry())
    ledger.close_period(date(2024, 5, 1))
    with pytest.raises(ClosedPeriodError):
        ledger.reverse_entry(original.erp_reference, fresh_key(), date(2024, 5, 10))
    assert ledger.reverse_entry(original.erp_reference, fresh_key(), date(2024, 6, 1)).created


def test_overlapping_periods_are_refused(ledger: LedgerAdapter) -> None:
    with pytest.raises(ValueError, match="overlaps"):
        ledger.open_period(date(2024, 3, 20), date(2024, 4, 10))
    ledger.open_period(date(2030, 1, 1), date(2030, 12, 31))  # a fiscal year as one period
    assert ledger.post_entry(payment_entry(on=date(2030, 7, 4))).created


# ---------------------------------------------------------------------- accounts and content


def test_inactive_account_is_an_unknown_account(ledger: LedgerAdapter) -> None:
    ledger.set_account_active(ALLOWANCE, False)
    with pytest.raises(UnknownAccountError, match=ALLOWANCE):
        ledger.post_entry(payment_entry())
    ledger.set_account_active(ALLOWANCE, True)
    assert ledger.post_entry(payment_entry()).created


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        ((JournalLine(CASH, debit=Decimal("1.00")),), "at least 2 lines"),
        (
            (
                JournalLine(CASH, debit=Decimal("1.005")),
                JournalLine(RECEIVABLE, credit=Decimal("1.005")),
            ),
            "sub-cents",
        ),
        (
            (
                JournalLine(CASH, debit=Decimal("1.00"), credit=Decimal("1.00")),
                JournalLine(RECEIVABLE, debit=Decimal("0.00"), credit=Decimal("0.00")),
            ),
            "exactly one",
        ),
        (
            (
                JournalLine(CASH, debit=Decimal("-1.00")),
                JournalLine(RECEIVABLE, credit=Decimal("-1.00")),
            ),
            "negative",
        ),
    ],
)
def test_malformed_entries_are_permanent_errors(
    ledger: LedgerAdapter, lines: tuple[JournalLine, ...], error: str
) -> None:
    entry = JournalEntry(fresh_key(), CONTRACT_DATE, "bad", lines)
    with pytest.raises(InvalidEntryError, match=error) as caught:
        ledger.post_entry(entry)
    assert caught.value.retryable is False
    assert ledger.entry_count() == 0


def test_same_key_with_other_amounts_is_a_conflict(ledger: LedgerAdapter) -> None:
    key = fresh_key()
    ledger.post_entry(payment_entry(key))
    with pytest.raises(IdempotencyConflictError, match=key):
        ledger.post_entry(payment_entry(key, paid="71.00"))
    # Free text is not part of the identity: a reworded retry is still the same posting.
    original = payment_entry(key)
    reworded = JournalEntry(key, original.entry_date, "new wording", original.lines)
    assert ledger.post_entry(reworded).created is False
    assert ledger.entry_count() == 1


def test_read_back_is_exact_to_the_cent_and_keeps_memo_and_cost_centre(
    ledger: LedgerAdapter,
) -> None:
    entry = payment_entry(paid="0.10", allowance="0.20", patient="1234567.89")
    posted = ledger.get_entry(ledger.post_entry(entry).erp_reference)
    assert posted is not None
    assert posted.lines == entry.lines
    assert posted.lines[-1].credit == Decimal("1234568.19")
    assert posted.created_at is not None and posted.created_at.utcoffset() is not None
    assert ledger.find_entry(entry.idempotency_key) == posted


# ---------------------------------------------------------------------- balances


def test_balances_to_the_cent_over_many_entries(ledger: LedgerAdapter) -> None:
    rng = random.Random(835)
    expected: defaultdict[str, Decimal] = defaultdict(lambda: ZERO)
    for n in range(400):
        cents = [rng.randint(1, 2_500_000) for _ in range(3)]
        paid, allowance, patient = (Decimal(c).scaleb(-2) for c in cents)
        entry = payment_entry(
            f"bulk-{n}", paid=str(paid), allowance=str(allowance), patient=str(patient)
        )
        ledger.post_entry(entry)
        for line in entry.lines:
            expected[line.account] += line.debit - line.credit
    for code in (CASH, ALLOWANCE, PATIENT, RECEIVABLE):
        assert ledger.account_balance(code) == expected[code]
    balances = ledger.trial_balance()
    assert sum(balances.values(), ZERO) == ZERO
    assert balances[RECEIVABLE] == -(expected[CASH] + expected[ALLOWANCE] + expected[PATIENT])
    assert balances["4000"] == ZERO  # untouched accounts are listed at zero
    assert ledger.entry_count() == 400


def test_unknown_account_has_no_balance(ledger: LedgerAdapter) -> None:
    with pytest.raises(UnknownAccountError):
        ledger.account_balance("0000")


# ---------------------------------------------------------------------- reversal


def test_reversal_nets_to_zero_and_cannot_be_repeated(ledger: LedgerAdapter) -> None:
    original = ledger.post_entry(payment_entry())
    first = ledger.reverse_entry(original.erp_reference, "rev-a", CONTRACT_DATE)
    assert all(amount == ZERO for amount in ledger.trial_balance().values())
    with pytest.raises(AlreadyReversedError, match=first.erp_reference) as caught:
        ledger.reverse_entry(original.erp_reference, "rev-b", CONTRACT_DATE)
    assert caught.value.retryable is False
    with pytest.raises(InvalidEntryError, match="itself a reversal"):
        ledger.reverse_entry(first.erp_reference, "rev-c", CONTRACT_DATE)
    posted = ledger.get_entry(original.erp_reference)
    assert posted is not None and posted.reversed_by == first.erp_reference
    assert ledger.entry_count() == 2


def test_reversal_key_already_used_by_an_entry_is_a_conflict(ledger: LedgerAdapter) -> None:
    original = ledger.post_entry(payment_entry())
    other = payment_entry()
    ledger.post_entry(other)
    with pytest.raises(IdempotencyConflictError):
        ledger.reverse_entry(original.erp_reference, other.idempotency_key, CONTRACT_DATE)


# ---------------------------------------------------------------------- concurrency


def _race(posters: list[LedgerAdapter], entry: JournalEntry) -> list[PostingResult]:
    barrier = threading.Barrier(len(posters))
    results: list[PostingResult] = []
    errors: list[BaseException] = []

    def run(adapter: LedgerAdapter) -> None:
        barrier.wait()
        try:
            results.append(adapter.post_entry(entry))
        except BaseException as exc:  # surfaced below, a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(adapter,)) for adapter in posters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_concurrent_same_key_posting_creates_one_entry(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite3"
    workers = [make_ledger(path), LedgerAdapter({"path": str(path)})]  # two "workers"
    for round_no in range(25):
        entry = payment_entry(f"race-{round_no}")
        results = _race(workers, entry)
        assert sorted(r.created for r in results) == [False, True]
        assert len({r.erp_reference for r in results}) == 1
    assert workers[0].entry_count() == 25
    assert workers[1].account_balance(CASH) == Decimal("70.00") * 25


class _StalePrecheckLedger(LedgerAdapter):
    """Loses every race: its pre-check never sees the other writer's row, as happens when both
    check before either commits. Only the UNIQUE constraint can save it."""

    def _lookup_key(
        self, conn: sqlite3.Connection, key: str, *, force: bool = False
    ) -> tuple[int, str] | None:
        return super()._lookup_key(conn, key) if force else None


def test_a_lost_race_falls_back_on_the_unique_key(ledger: LedgerAdapter) -> None:
    entry = payment_entry()
    won = ledger.post_entry(entry)
    loser = _StalePrecheckLedger({"path": str(ledger.path)})
    lost = loser.post_entry(entry)
    assert (lost.erp_reference, lost.created) == (won.erp_reference, False)
    with pytest.raises(IdempotencyConflictError):
        loser.post_entry(payment_entry(entry.idempotency_key, paid="1.00"))
    assert ledger.entry_count() == 1


# ---------------------------------------------------------------------- storage and options


def test_entries_are_immutable_in_the_file(ledger: LedgerAdapter) -> None:
    ledger.post_entry(payment_entry())
    with sqlite3.connect(ledger.path) as raw:
        with pytest.raises(sqlite3.DatabaseError, match="immutable"):
            raw.execute("UPDATE lines SET debit_cents = debit_cents + 1")
        with pytest.raises(sqlite3.DatabaseError, match="immutable"):
            raw.execute("DELETE FROM entries")
    assert ledger.account_balance(CASH) == Decimal("70.00")


def test_ledger_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "ledger.sqlite3"
    reference = make_ledger(path).post_entry(payment_entry()).erp_reference
    reopened = LedgerAdapter({"path": str(path)})
    assert reopened.get_entry(reference) is not None
    assert reopened.account_balance(RECEIVABLE) == Decimal("-100.00")


def test_bootstrap_seeds_chart_and_months_once(tmp_path: Path) -> None:
    ledger = LedgerAdapter({"path": str(tmp_path / "l.sqlite3"), "bootstrap_year": "2025"})
    assert set(ledger.trial_balance()) == {spec.code for spec in DEFAULT_CHART}
    assert ledger.bootstrap_chart(DEFAULT_CHART, year=2025) == 0  # idempotent
    assert ledger.open_year(2025) == 0
    assert ledger.post_entry(payment_entry(on=date(2025, 12, 31))).created
    with pytest.raises(ClosedPeriodError):
        ledger.post_entry(payment_entry(on=date(2026, 1, 1)))


def test_create_account_refuses_duplicates_and_bad_types(ledger: LedgerAdapter) -> None:
    ledger.create_account("1260", "Payer receivable - Tricare", "asset")
    assert ledger.account_balance("1260") == ZERO
    with pytest.raises(ValueError, match="already exists"):
        ledger.create_account("1260", "again", "asset")
    with pytest.raises(ValueError, match="type"):
        ledger.create_account("1270", "x", "nonsense")


@pytest.mark.parametrize("bad", [{}, {"path": ""}, {"path": ":memory:"}])
def test_ledger_needs_a_file(bad: dict[str, object]) -> None:
    with pytest.raises(AdapterConfigError):
        LedgerAdapter(bad)


def test_fault_injection_is_explicit_and_switchable(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path / "f.sqlite3", fail_mode="rate_limited", retry_after="2.5")
    with pytest.raises(RateLimitedError) as caught:
        ledger.post_entry(payment_entry())
    assert (caught.value.retryable, caught.value.retry_after) == (True, 2.5)
    ledger.fail_mode = "unavailable"
    with pytest.raises(ErpUnavailableError):
        ledger.reverse_entry("JE-00000001", fresh_key(), CONTRACT_DATE)
    assert "fault injection" in ledger.health().detail
    ledger.fail_mode = ""
    assert ledger.health().ok
    assert ledger.post_entry(payment_entry()).created
    with pytest.raises(AdapterConfigError, match="fail_mode"):
        LedgerAdapter({"path": str(tmp_path / "g.sqlite3"), "fail_mode": "sometimes"})


def test_health_reports_an_unreadable_file(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path / "h.sqlite3")
    ledger.path.write_bytes(b"this is not a database" * 100)
    health = ledger.health()
    assert health.ok is False and "unreadable" in health.detail


def test_a_locked_ledger_is_a_transient_error(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path / "busy.sqlite3", busy_timeout="0.05")
    holder = sqlite3.connect(ledger.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock past our patience
    try:
        with pytest.raises(ErpUnavailableError, match="busy or unreadable") as caught:
            ledger.post_entry(payment_entry())
        assert caught.value.retryable is True
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert ledger.post_entry(payment_entry()).created


def test_a_corrupt_ledger_file_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path / "c.sqlite3")
    ledger.path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ErpUnavailableError):
        ledger.post_entry(payment_entry())
    with pytest.raises(ErpUnavailableError):
        ledger.get_entry("JE-00000001")
