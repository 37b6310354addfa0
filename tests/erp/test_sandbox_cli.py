"""``claimsync erp-sandbox serve`` as a real child process, reached over loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from claimsync_console.erp.base import TransientErpError
from claimsync_console.erp.rest import RestAdapter
from tests.erp.contract import payment_entry

LAUNCH = "from claimsync_console.cli.app import main; main()"


def _serve(tmp_path: Path, *args: str) -> Iterator[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "erp-sandbox", "serve", "--port", "0",
         "--ledger", str(tmp_path / "ledger.sqlite3"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "CLAIMSYNC_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), child.stderr.read() if child.stderr else ""
        yield url
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, "--fault-rate", "1", "--faults", "error,rate_limit", "--seed", "1")


def test_the_served_sandbox_posts_for_this_year(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    for url in _serve(tmp_path):
        adapter = RestAdapter({"base_url": url})
        assert adapter.health().ok
        result = adapter.post_entry(payment_entry(on=datetime.now(UTC).date()))
        assert result.created and adapter.get_entry(result.erp_reference) is not None


def test_fault_flags_and_the_control_endpoint(faulty: str) -> None:
    adapter = RestAdapter({"base_url": faulty, "max_retries": 0})
    with pytest.raises(TransientErpError):  # 503 or 429, both transient
        adapter.post_entry(payment_entry())
    plan = httpx.get(f"{faulty}/_sandbox/faults").json()
    assert (plan["error_rate"], plan["rate_limit_rate"], plan["seed"]) == (0.5, 0.5, 1)
    httpx.put(f"{faulty}/_sandbox/faults", json={})
    assert adapter.health().ok


def test_a_bad_fault_kind_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, "erp-sandbox", "serve", "--faults", "gremlins",
         "--fault-rate", "0.1", "--ledger", str(tmp_path / "l.sqlite3")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "gremlins" not in done.stdout
    assert "Traceback" not in done.stderr
