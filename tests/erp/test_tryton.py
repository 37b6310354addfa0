"""What only the Tryton adapter is asked: its wire protocol, error table, batching and
idempotency against a real trytond (on SQLite; the contract runs on PostgreSQL too)."""

from __future__ import annotations

import base64
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.erp.adapter_config import create_configured_adapter, env_name
from claimsync_console.erp.base import (
    AdapterConfigError,
    ClosedPeriodError,
    ErpUnavailableError,
    IdempotencyConflictError,
    PermanentErpError,
    UnknownAccountError,
)
from claimsync_console.erp.registry import available_adapters
from claimsync_console.erp.tryton import PASSWORD_ENV, TrytonAdapter
from claimsync_console.erp.tryton_bootstrap import bootstrap_books
from claimsync_console.erp.tryton_moves import describe
from claimsync_console.erp.tryton_rpc import (
    TrytonRpc,
    TrytonUserError,
    TrytonWarning,
    dumps,
    loads,
)
from tests.erp.contract import CASH, RECEIVABLE, fresh_key
from tests.erp.tryton_server import COMPANY, YEARS, RunningTryton

TEN = Decimal("10.00")
PARTY_ACCOUNT = "1299"  # created below with "party required": Tryton refuses lines without one


@pytest.fixture(scope="module")
def server(tryton_sqlite_server: RunningTryton) -> RunningTryton:
    rpc = tryton_sqlite_server.admin_rpc()
    ctx: dict[str, object] = {"company": 1}
    parent, type_id = _a_chart_account(rpc, ctx)
    rpc.call(
        "model.account.account.create",
        [
            {
                "name": "Party receivable",
                "code": PARTY_ACCOUNT,
                "type": type_id,
                "parent": parent,
                "party_required": True,
                "company": 1,
            }
        ],
        ctx,
    )
    rpc.close()
    return tryton_sqlite_server


def _a_chart_account(rpc: TrytonRpc, ctx: dict[str, object]) -> tuple[int, int]:
    """Parent and type of an existing account, to hang a new one beside it."""
    row = rpc.call(
        "model.account.account.search_read", [("code", "=", CASH)], 0, 1, None,
        ["parent", "type"], ctx,
    )[0]  # fmt: skip
    return int(row["parent"]), int(row["type"])


@pytest.fixture
def adapter(server: RunningTryton) -> Iterator[TrytonAdapter]:
    tryton = server.adapter()
    yield tryton
    tryton.close()


def simple_entry(key: str | None = None, amount: str = "10.00", *, on: date = date(2024, 3, 15),
                 debit_account: str = CASH) -> JournalEntry:  # fmt: skip
    value = Decimal(amount)
    return JournalEntry(
        key or fresh_key("tryton"),
        on,
        "835 payment",
        (JournalLine(debit_account, debit=value), JournalLine(RECEIVABLE, credit=value)),
        reference="TRN-1",
    )


# ---------------------------------------------------------------------- the wire


def test_decimals_and_dates_travel_the_tryton_way() -> None:
    body = dumps([Decimal("70.10"), date(2024, 3, 15)])
    assert b'{"__class__":"Decimal","decimal":"70.10"}' in body
    assert b'{"__class__":"date","year":2024,"month":3,"day":15}' in body
    assert loads(body) == [Decimal("70.10"), date(2024, 3, 15)]


def test_session_header_is_login_uid_session(adapter: TrytonAdapter) -> None:
    assert adapter.health().ok
    scheme, token = (adapter.rpc._auth or "").split(" ", 1)
    login, uid, session = base64.b64decode(token).decode().split(":", 2)
    assert (scheme, login, int(uid)) == ("Session", "admin", adapter.rpc.user_id)
    assert session


# ---------------------------------------------------------------------- the error table


def test_401_logs_in_again_and_retries(adapter: TrytonAdapter) -> None:
    first = adapter.post_entry(simple_entry())
    adapter.rpc.call("common.db.logout")  # trytond forgets the session: next call gets 401
    second = adapter.post_entry(simple_entry())
    assert adapter.rpc.logins == 2
    assert first.created and second.created and first.erp_reference != second.erp_reference


def test_503_lock_contention_is_retryable(adapter: TrytonAdapter, server: RunningTryton) -> None:
    assert adapter.health().ok  # logged in before the lock: a login writes too
    assert server.db_file is not None
    holder = sqlite3.connect(server.db_file, isolation_level=None, timeout=30)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the database
    try:
        with pytest.raises(ErpUnavailableError, match="503") as caught:
            adapter.post_entry(simple_entry())
        assert caught.value.retryable is True
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert adapter.post_entry(simple_entry()).created  # the retry goes through


def test_user_error_is_permanent_and_leaves_nothing(adapter: TrytonAdapter) -> None:
    before = adapter.entry_count()
    with pytest.raises(TrytonUserError) as caught:
        adapter.post_entry(simple_entry(debit_account=PARTY_ACCOUNT))
    assert caught.value.retryable is False and isinstance(caught.value, PermanentErpError)
    assert adapter.entry_count() == before


def test_user_warning_is_refused_unless_accepted(
    adapter: TrytonAdapter, server: RunningTryton
) -> None:
    june = date(2024, 6, 10)
    original = adapter.post_entry(simple_entry(on=june))
    rpc = server.admin_rpc()
    period = rpc.call(
        "model.account.period.search",
        [("start_date", "<=", june), ("end_date", ">=", june), ("type", "=", "standard")],
        0, 1, None, {"company": 1},
    )  # fmt: skip
    rpc.call("model.account.period.close", period, {"company": 1})
    rpc.close()
    key = fresh_key("reversal")
    with pytest.raises(TrytonWarning) as caught:
        adapter.reverse_entry(original.erp_reference, key, june)
    assert caught.value.retryable is False and caught.value.name.endswith(".cancel")
    accepting = server.adapter(accept_warnings="*.cancel")
    reversal = accepting.reverse_entry(original.erp_reference, key, june)
    mirror = accepting.get_entry(reversal.erp_reference)
    assert reversal.created and mirror is not None
    assert mirror.reversal_of == original.erp_reference
    # Tryton moved it to today's period (its "today" is the server's local date).
    assert mirror.entry_date in {datetime.now(UTC).date(), date.today()}
    accepting.close()


# ---------------------------------------------------------------------- idempotency


def test_repost_returns_the_same_reference_in_and_across_batches(adapter: TrytonAdapter) -> None:
    posted = adapter.post_entry(simple_entry())
    fresh = simple_entry()
    before = adapter.entry_count()
    again = adapter.post_entries([simple_entry(posted.idempotency_key), fresh, fresh])
    assert [r.created for r in again] == [False, True, False]
    assert again[0].erp_reference == posted.erp_reference
    assert again[1].erp_reference == again[2].erp_reference
    assert adapter.entry_count() == before + 1


def test_same_key_for_other_amounts_is_a_conflict(adapter: TrytonAdapter) -> None:
    key = fresh_key("tryton")
    adapter.post_entry(simple_entry(key))
    with pytest.raises(IdempotencyConflictError, match=key):
        adapter.post_entry(simple_entry(key, amount="11.00"))


def test_a_draft_left_by_a_crash_is_posted_not_duplicated(
    adapter: TrytonAdapter, server: RunningTryton
) -> None:
    entry = simple_entry(key=f"{fresh_key('crash')}_%")  # LIKE wildcards in the key
    adapter.health()
    chart = adapter.chart
    chart.load_accounts({CASH, RECEIVABLE})
    rpc = server.admin_rpc()
    values = {
        "company": chart.company,
        "journal": chart.journal,
        "period": chart.period_for(entry.entry_date),
        "date": entry.entry_date,
        "description": describe(entry.description, entry.reference, entry.idempotency_key),
        "lines": [("create", [
            {"account": chart.accounts[CASH], "debit": TEN, "credit": Decimal(0)},
            {"account": chart.accounts[RECEIVABLE], "debit": Decimal(0), "credit": TEN},
        ])],
    }  # fmt: skip
    (draft,) = rpc.call("model.account.move.create", [values], {"company": chart.company})
    rpc.close()
    before = adapter.entry_count()
    result = adapter.post_entry(entry)
    assert result.erp_reference.endswith(f":{draft}") and result.created is False
    assert adapter.entry_count() == before
    state = adapter.rpc.call("model.account.move.read", [draft], ["state"], chart.ctx())
    assert state[0]["state"] == "posted"


# ---------------------------------------------------------------------- batching


def test_batches_post_every_entry_in_order(server: RunningTryton) -> None:
    adapter = server.adapter(batch_size=40)
    entries = [simple_entry(amount=f"{n}.00") for n in range(1, 101)]
    before = adapter.entry_count()
    results = adapter.post_entries(entries)
    assert [r.idempotency_key for r in results] == [e.idempotency_key for e in entries]
    assert all(r.created for r in results) and len({r.erp_reference for r in results}) == 100
    assert adapter.entry_count() == before + 100
    last = adapter.get_entry(results[-1].erp_reference)
    assert last is not None and last.lines[0].debit == Decimal("100.00")
    assert (last.description, last.reference) == ("835 payment", "TRN-1")
    adapter.close()


def test_parallel_requests_post_every_entry_once_in_order(server: RunningTryton) -> None:
    """Chunks sent concurrently (one URL: trytond's own threads); a key repeated across chunks
    makes the batch go one chunk after another, so the repeat is a replay, not a second move."""
    adapter = server.adapter(batch_size=7, parallel_requests=3)
    entries = [simple_entry(amount=f"{n}.00") for n in range(1, 41)]
    before = adapter.entry_count()
    results = adapter.post_entries(entries)
    assert [r.idempotency_key for r in results] == [e.idempotency_key for e in entries]
    assert all(r.created for r in results) and len({r.erp_reference for r in results}) == 40
    repeat = [simple_entry() for _ in range(10)]
    replayed = adapter.post_entries([*repeat, repeat[0]])
    assert [r.created for r in replayed] == [True] * 10 + [False]
    assert replayed[-1].erp_reference == replayed[0].erp_reference
    assert adapter.entry_count() == before + 50
    adapter.close()


@pytest.mark.parametrize(
    ("bad_account", "error"), [("9999", UnknownAccountError), (PARTY_ACCOUNT, TrytonUserError)]
)
def test_a_refused_entry_stops_the_batch_after_the_ones_before_it(
    adapter: TrytonAdapter, bad_account: str, error: type[PermanentErpError]
) -> None:
    good = [simple_entry(), simple_entry()]
    bad = simple_entry(debit_account=bad_account)
    later = simple_entry()
    before = adapter.entry_count()
    with pytest.raises(error):
        adapter.post_entries([*good, bad, later])
    assert adapter.entry_count() == before + 2  # the two before it, nothing else, no draft
    assert [r.created for r in adapter.post_entries(good)] == [False, False]


# ---------------------------------------------------------------------- bootstrap


def test_bootstrap_again_adds_only_what_is_missing(
    adapter: TrytonAdapter, server: RunningTryton
) -> None:
    with pytest.raises(ClosedPeriodError, match="no Tryton accounting period"):
        adapter.post_entry(simple_entry(on=date(2031, 2, 3)))
    rpc = server.admin_rpc()
    rpc.login()
    books = bootstrap_books(rpc, company_name=COMPANY, years=[*YEARS, 2031])
    rpc.close()
    assert (books.company_id, books.accounts_added) == (adapter.chart.company, 0)
    # The adapter picks the new fiscal year up without a restart.
    assert adapter.post_entry(simple_entry(on=date(2031, 2, 3))).created


# ---------------------------------------------------------------------- options and secrets


def test_registered_under_the_entry_point() -> None:
    assert available_adapters().get("tryton") is TrytonAdapter


def test_options_and_password_come_from_the_environment_and_are_never_shown(
    server: RunningTryton, caplog: pytest.LogCaptureFixture
) -> None:
    password = server.password_file.read_text().strip()
    environ = {
        env_name("tryton", name): str(value)
        for name, value in server.options().items()
        if name != "password_file"
    }
    environ[PASSWORD_ENV] = password
    caplog.set_level(logging.DEBUG)
    adapter = create_configured_adapter("tryton", environ=environ)
    assert isinstance(adapter, TrytonAdapter)
    assert adapter.health().ok
    assert adapter.post_entry(simple_entry()).created
    assert adapter.redacted_settings()["password"] == "********"
    assert password not in repr(adapter.rpc) + repr(adapter.redacted_settings())
    assert password not in caplog.text
    adapter.close()


def test_a_wrong_password_is_permanent_and_not_echoed(
    server: RunningTryton, tmp_path: Path
) -> None:
    wrong = tmp_path / "pw"
    wrong.write_text("not-the-password-123\n")
    adapter = server.adapter(password_file=str(wrong))
    health = adapter.health()
    assert not health.ok and "not-the-password-123" not in health.detail
    with pytest.raises(PermanentErpError, match="refused the login"):
        adapter.post_entry(simple_entry())
    adapter.close()


def test_a_database_trytond_did_not_load_is_unavailable(server: RunningTryton) -> None:
    adapter = server.adapter(database="not_loaded_db")
    with pytest.raises(ErpUnavailableError, match="-d"):
        adapter.post_entry(simple_entry())
    adapter.close()


@pytest.mark.parametrize(
    "bad",
    [
        {"batch_size": "0"},
        {"password_file": "/nonexistent/pw"},
        {"parallel_requests": "0"},
        {"parallel_requests": "9"},
    ],
)
def test_bad_options_fail_at_construction(server: RunningTryton, bad: dict[str, str]) -> None:
    with pytest.raises(AdapterConfigError):
        TrytonAdapter(server.options(**bad))
