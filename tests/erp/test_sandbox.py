"""The sandbox ERP itself: control endpoint, fault plans, routes and durability, over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from claimsync_console.erp.sandbox import SandboxLedger, SandboxServer, open_sandbox_ledger
from claimsync_console.erp.sandbox_faults import FaultInjector, FaultPlan, FaultPlanError
from tests.erp.contract import CONTRACT_DATE, payment_entry


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SandboxServer]:
    ledger = open_sandbox_ledger(tmp_path / "s.sqlite3", year=CONTRACT_DATE.year)
    with SandboxServer(ledger) as running:
        yield running


def test_binds_loopback_by_default(server: SandboxServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")


def test_control_endpoint_sets_and_reads_the_fault_plan(server: SandboxServer) -> None:
    put = httpx.put(f"{server.url}/_sandbox/faults", json={"error_rate": 1, "seed": 3})
    assert put.status_code == 200 and put.json()["error_rate"] == 1.0
    assert httpx.get(f"{server.url}/health").status_code == 503
    assert httpx.get(f"{server.url}/_sandbox/faults").json()["seed"] == 3  # control is exempt
    bad = httpx.put(f"{server.url}/_sandbox/faults", json={"error_rate": 2})
    assert bad.status_code == 400 and "between 0 and 1" in bad.text
    unknown = httpx.put(f"{server.url}/_sandbox/faults", json={"flakiness": 0.5})
    assert unknown.status_code == 400 and "flakiness" in unknown.text
    httpx.put(f"{server.url}/_sandbox/faults", json={})
    assert httpx.get(f"{server.url}/health").json()["ok"] is True


def test_drop_closes_the_connection_without_a_reply(server: SandboxServer) -> None:
    server.faults.set_plan(FaultPlan(drop_rate=1.0))
    host, port = server.httpd.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=5) as raw:
        raw.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.recv(100) == b""


def test_malformed_reply_is_not_json(server: SandboxServer) -> None:
    server.faults.set_plan(FaultPlan(malformed_rate=1.0))
    reply = httpx.get(f"{server.url}/health")
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        reply.json()


def test_bad_requests_get_clear_json_errors(server: SandboxServer) -> None:
    headers = {"Idempotency-Key": "k-1"}
    not_json = httpx.post(f"{server.url}/entries", content=b"{oops", headers=headers)
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "bad_request"
    unreadable = httpx.post(f"{server.url}/entries", json={"lines": 3}, headers=headers)
    assert unreadable.status_code == 422
    assert httpx.get(f"{server.url}/nowhere").status_code == 404
    assert httpx.get(f"{server.url}/entries/JE-00000042").status_code == 404
    mismatch = httpx.post(f"{server.url}/entries", json=_wire(), headers=headers)
    assert mismatch.status_code == 400 and "must match" in mismatch.text


def _wire() -> dict[str, object]:
    from claimsync_console.erp.rest import entry_to_wire

    return entry_to_wire(payment_entry())


def test_fault_plans_validate_and_spread() -> None:
    plan = FaultPlan.spread(0.3, ("error", "drop", "malformed"))
    assert plan.error_rate == plan.drop_rate == plan.malformed_rate == pytest.approx(0.1)
    for bad in ({"error_rate": -0.1}, {"error_rate": 0.6, "drop_rate": 0.6}, {"hang": -1}):
        with pytest.raises(FaultPlanError):
            FaultPlan(**bad)
    with pytest.raises(FaultPlanError):
        FaultPlan.spread(0.1, ("gremlins",))
    with pytest.raises(FaultPlanError):
        FaultPlan.from_json({"fail_next": "2"})


def test_a_seeded_plan_draws_about_its_rate() -> None:
    injector = FaultInjector(FaultPlan(error_rate=0.2, drop_rate=0.1, seed=7))
    draws = [injector.draw() for _ in range(5000)]
    assert 0.17 < draws.count("error") / 5000 < 0.23
    assert 0.07 < draws.count("drop") / 5000 < 0.13
    assert injector.counts["error"] == draws.count("error")


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_durability_setting_reaches_sqlite(tmp_path: Path, durability: str) -> None:
    ledger = open_sandbox_ledger(tmp_path / "d.sqlite3", durability=durability, year=2024)
    assert ledger.post_entry(payment_entry()).created
    with ledger._connection() as conn:
        level = conn.execute("PRAGMA synchronous").fetchone()[0]
    assert level == {"normal": 1, "full": 2}[durability]
    reopened = SandboxLedger({"path": str(ledger.path)})
    assert reopened.entry_count() == 1


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_group_commit_stops_at_the_first_refusal(tmp_path: Path, durability: str) -> None:
    from decimal import Decimal

    from claimsync_console.domain.journal import JournalEntry, JournalLine
    from claimsync_console.erp.base import ErpError, UnknownAccountError

    ledger = open_sandbox_ledger(tmp_path / "g.sqlite3", durability=durability, year=2024)
    good = [payment_entry() for _ in range(3)]
    nowhere = JournalEntry("g-bad", CONTRACT_DATE, "x", (
        JournalLine("9999", debit=Decimal("1.00")), JournalLine("1200", credit=Decimal("1.00")),
    ))  # fmt: skip
    outcomes = ledger.post_many([*good[:2], nowhere, good[2]])
    assert [getattr(o, "created", None) for o in outcomes[:2]] == [True, True]
    assert isinstance(outcomes[2], UnknownAccountError) and len(outcomes) == 3
    assert ledger.entry_count() == 2  # the refusal rolled back alone; the rest committed
    again = ledger.post_many(good)
    assert [o.created for o in again if not isinstance(o, ErpError)] == [False, False, True]


def test_a_garbled_content_length_is_a_bad_request(server: SandboxServer) -> None:
    host, port = server.httpd.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=5) as raw:
        raw.sendall(b"POST /entries HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n")
        assert raw.recv(200).startswith(b"HTTP/1.1 400")
