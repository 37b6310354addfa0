"""The REST adapter against the real sandbox ERP on loopback: the contract, then HTTP behaviour.

Nothing HTTP is mocked: each module starts a real ``SandboxServer`` on a free port, and faults
come from its own injector (set through the runtime control endpoint where that is the point).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.erp.base import (
    AdapterConfigError,
    ErpAdapter,
    ErpUnavailableError,
    IdempotencyConflictError,
    PermanentErpError,
    RateLimitedError,
    UnknownAccountError,
)
from claimsync_console.erp.rest import RestAdapter, parse_retry_after
from claimsync_console.erp.sandbox import SandboxServer, open_sandbox_ledger
from claimsync_console.erp.sandbox_faults import FaultPlan
from tests.erp.contract import CONTRACT_DATE, ErpAdapterContract, fresh_key, payment_entry


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    path = tmp_path_factory.mktemp("sandbox") / "ledger.sqlite3"
    with SandboxServer(open_sandbox_ledger(path, year=CONTRACT_DATE.year)) as server:
        yield server


@pytest.fixture(autouse=True)
def healthy(sandbox: SandboxServer) -> Iterator[None]:
    sandbox.faults.set_plan(FaultPlan())
    sandbox.reset_stats()
    yield
    sandbox.faults.set_plan(FaultPlan())


def rest(sandbox: SandboxServer, **options: object) -> RestAdapter:
    options.setdefault("retry_backoff", 0.0)
    return RestAdapter({"base_url": sandbox.url, **options})


class TestRestContract(ErpAdapterContract):
    @pytest.fixture
    def erp_adapter(self, sandbox: SandboxServer) -> Iterator[ErpAdapter]:
        adapter = rest(sandbox)
        yield adapter
        adapter.close()

    @pytest.fixture
    def unavailable_erp_adapter(self, tmp_path: Path) -> Iterator[ErpAdapter]:
        """A second sandbox that answers every API call with 503."""
        ledger = open_sandbox_ledger(tmp_path / "down.sqlite3", year=CONTRACT_DATE.year)
        with SandboxServer(ledger, faults=FaultPlan(error_rate=1.0)) as down:
            adapter = rest(down, max_retries=1)
            yield adapter
            adapter.close()

    def entry_count(self, adapter: ErpAdapter) -> int | None:
        assert isinstance(adapter, RestAdapter)
        reply = httpx.get(f"{adapter.base_url}/_sandbox/stats").json()
        return int(reply["entries"])


# ---------------------------------------------------------------------- headers and auth


def test_every_posting_carries_its_idempotency_key(sandbox: SandboxServer) -> None:
    adapter = rest(sandbox)
    entry = payment_entry()
    adapter.post_entry(entry)
    assert sandbox.stats()["last_idempotency_key"] == entry.idempotency_key
    reversal_key = fresh_key("rev")
    adapter.reverse_entry(adapter.post_entry(payment_entry()).erp_reference, reversal_key,
                          CONTRACT_DATE)  # fmt: skip
    assert sandbox.stats()["last_idempotency_key"] == reversal_key
    # The sandbox refuses a posting without the header, so the adapter must have sent it.
    raw = httpx.post(f"{sandbox.url}/entries", json={"entries": []})
    assert raw.status_code == 400 and "Idempotency-Key" in raw.text


def test_same_key_other_content_is_a_conflict(sandbox: SandboxServer) -> None:
    adapter = rest(sandbox)
    key = fresh_key()
    adapter.post_entry(payment_entry(key))
    with pytest.raises(IdempotencyConflictError) as caught:
        adapter.post_entry(payment_entry(key, paid="71.00"))
    assert caught.value.retryable is False


@pytest.fixture
def locked_sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    ledger = open_sandbox_ledger(tmp_path / "locked.sqlite3", year=CONTRACT_DATE.year)
    with SandboxServer(ledger, token="s3cret-token") as server:
        yield server


@pytest.mark.parametrize(
    "options", [{"auth": "bearer"}, {"auth": "header", "auth_header": "X-Api-Key"}]
)
def test_token_auth_by_bearer_or_header(
    locked_sandbox: SandboxServer, options: dict[str, object]
) -> None:
    assert rest(locked_sandbox, token="s3cret-token", **options).post_entry(payment_entry()).created
    with pytest.raises(PermanentErpError, match="credentials") as caught:
        rest(locked_sandbox, token="wrong", **options).post_entry(payment_entry())
    assert caught.value.retryable is False
    assert not rest(locked_sandbox).health().ok


def test_token_from_a_file_is_masked(locked_sandbox: SandboxServer, tmp_path: Path) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text("s3cret-token\n")
    adapter = rest(locked_sandbox, auth="bearer", token_file=str(secret))
    assert adapter.health().ok
    shown = adapter.redacted_settings()
    assert shown["token"] == "********" and "s3cret" not in repr(shown)


@pytest.mark.parametrize(
    "options",
    [
        {"base_url": "ftp://example"},
        {"auth": "bearer"},
        {"token": "a", "token_file": "/nonexistent"},
        {"token_file": "/nonexistent/token"},
        {"concurrency": 0},
        {"auth": "sometimes"},
    ],
)
def test_bad_options_are_config_errors(options: dict[str, object]) -> None:
    with pytest.raises(AdapterConfigError):
        RestAdapter(options)


# ---------------------------------------------------------------------- faults


def test_429_is_rate_limited_with_the_servers_retry_after(sandbox: SandboxServer) -> None:
    sandbox.faults.set_plan(FaultPlan(rate_limit_rate=1.0, retry_after=7.0))
    with pytest.raises(RateLimitedError) as caught:
        rest(sandbox).post_entry(payment_entry())
    assert (caught.value.retryable, caught.value.retry_after) == (True, 7.0)
    assert sandbox.stats()["faults"]["rate_limit"] == 1  # 429 is not retried inside the call


def test_retry_after_as_seconds_or_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(later, now=now.timestamp()) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_5xx_is_retried_within_the_call(sandbox: SandboxServer) -> None:
    sandbox.faults.set_plan(FaultPlan(fail_next=2))
    result = rest(sandbox, max_retries=2).post_entry(payment_entry())
    assert result.created
    assert sandbox.stats()["faults"]["error"] == 2 and sandbox.stats()["requests"] == 3


def test_5xx_retries_are_bounded(sandbox: SandboxServer) -> None:
    sandbox.faults.set_plan(FaultPlan(error_rate=1.0))
    with pytest.raises(ErpUnavailableError) as caught:
        rest(sandbox, max_retries=3).post_entry(payment_entry())
    assert caught.value.retryable is True
    assert sandbox.stats()["requests"] == 4


@pytest.mark.parametrize("kind", ["drop", "malformed", "timeout"])
def test_faults_after_the_commit_are_retryable_and_the_retry_is_deduplicated(
    sandbox: SandboxServer, kind: str
) -> None:
    sandbox.faults.set_plan(FaultPlan(**{f"{kind}_rate": 1.0}, hang=1.0))  # type: ignore[arg-type]
    adapter = rest(sandbox, max_retries=0, timeout=0.2)
    entry = payment_entry()
    with pytest.raises(ErpUnavailableError) as caught:
        adapter.post_entry(entry)
    assert caught.value.retryable is True
    assert not isinstance(caught.value, PermanentErpError)
    sandbox.faults.set_plan(FaultPlan())
    _settle(sandbox)
    again = adapter.post_entry(entry)  # the ERP committed the first one; the key finds it
    assert again.created is False


def _settle(sandbox: SandboxServer) -> None:
    """Wait until the sandbox has finished every request it started (a timed-out client
    does not stop the server): a polling wait, not a timing assertion."""
    while sandbox.stats()["in_flight"]:
        time.sleep(0.02)


def test_faults_before_the_commit_leave_nothing_behind(sandbox: SandboxServer) -> None:
    sandbox.faults.set_plan(FaultPlan(error_rate=1.0))
    entry = payment_entry()
    with pytest.raises(ErpUnavailableError):
        rest(sandbox, max_retries=0).post_entry(entry)
    sandbox.faults.set_plan(FaultPlan())
    assert rest(sandbox).post_entry(entry).created is True


def test_latency_is_injected_and_a_refused_connection_is_unavailable(
    sandbox: SandboxServer,
) -> None:
    sandbox.faults.set_plan(FaultPlan(latency=0.3))
    with pytest.raises(ErpUnavailableError, match="timed out"):
        rest(sandbox, max_retries=0, timeout=0.05).post_entry(payment_entry())
    closed = RestAdapter({"base_url": "http://127.0.0.1:9", "max_retries": 0})
    with pytest.raises(ErpUnavailableError, match="unreachable"):
        closed.post_entry(payment_entry())
    assert closed.health().ok is False


def test_unknown_account_in_a_batch_stops_it_and_earlier_entries_stand(
    sandbox: SandboxServer,
) -> None:
    adapter = rest(sandbox)
    good = [payment_entry() for _ in range(3)]
    base = payment_entry()
    nowhere = JournalLine("9999", debit=base.lines[3].credit)
    bad = JournalEntry(base.idempotency_key, base.entry_date, "x", (nowhere, base.lines[3]))
    with pytest.raises(UnknownAccountError):
        adapter.post_entries([*good, bad, payment_entry()])
    assert [r.created for r in adapter.post_entries(good)] == [False, False, False]


def test_batches_post_in_one_request_per_hundred(sandbox: SandboxServer) -> None:
    entries = [payment_entry() for _ in range(150)]
    results = rest(sandbox).post_entries(entries)
    assert [r.idempotency_key for r in results] == [e.idempotency_key for e in entries]
    assert sandbox.stats()["requests"] == 2


def test_the_concurrency_limit_caps_requests_in_flight(sandbox: SandboxServer) -> None:
    _settle(sandbox)  # an earlier test's abandoned request may still be in flight
    sandbox.reset_stats()
    sandbox.faults.set_plan(FaultPlan(latency=0.05))
    adapter = rest(sandbox, concurrency=2, max_connections=4)
    threads = [
        threading.Thread(target=lambda: adapter.post_entry(payment_entry())) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = sandbox.stats()
    assert stats["requests"] == 8
    assert 1 <= stats["peak_in_flight"] <= 2


class _Redirecting(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(307)
        self.send_header("Location", "https://elsewhere.example/entries")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_a_redirect_is_permanent_not_followed() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        adapter = RestAdapter({"base_url": f"http://{host!s}:{port}"})
        with pytest.raises(PermanentErpError, match=r"elsewhere\.example"):
            adapter.post_entry(payment_entry())
    finally:
        server.shutdown()
        server.server_close()
