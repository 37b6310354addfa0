"""Adapter discovery through real entry points: the installed ledger and plugins on sys.path.

The plugin tests write an actual ``*.dist-info`` (METADATA + entry_points.txt) into a temporary
directory and put it on ``sys.path``; importlib.metadata finds it exactly as it would find a
pip-installed distribution. Nothing in importlib is replaced.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.erp.registry import (
    BrokenAdapterWarning,
    UnknownAdapterError,
    available_adapters,
    create_adapter,
)

PLUGIN_MODULE = "claimsync_test_echo_plugin"

PLUGIN_SOURCE = """
from claimsync_console.erp.base import AdapterHealth, ErpAdapter, PostingResult


class EchoAdapter(ErpAdapter):
    name = "echo"

    def post_entry(self, entry):
        return PostingResult("echo-1", True, entry.idempotency_key)

    def reverse_entry(self, erp_reference, idempotency_key, reversal_date):
        return PostingResult("echo-2", True, idempotency_key)

    def get_entry(self, erp_reference):
        return None

    def health(self):
        return AdapterHealth(True, "echo", 0.0)


class HalfDone(ErpAdapter):
    name = "half"
"""

ENTRY_POINTS = f"""
[claimsync.erp_adapters]
broken = claimsync_module_that_does_not_exist:Adapter
not_an_adapter = json:dumps
half = {PLUGIN_MODULE}:HalfDone
echo = {PLUGIN_MODULE}:EchoAdapter
"""


def _write_distribution(root: Path, name: str, entry_points: str) -> None:
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def plugins_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    _write_distribution(tmp_path, "claimsync_test_plugins", ENTRY_POINTS)
    (tmp_path / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop(PLUGIN_MODULE, None)


def test_the_installed_ledger_is_discovered() -> None:
    adapters = available_adapters()
    assert adapters["ledger"] is LedgerAdapter


def test_create_adapter_builds_from_options(tmp_path: Path) -> None:
    adapter = create_adapter("ledger", {"path": str(tmp_path / "l.sqlite3")})
    assert isinstance(adapter, LedgerAdapter)
    assert adapter.health().ok


def test_unknown_adapter_names_the_installed_ones() -> None:
    with pytest.raises(UnknownAdapterError, match="ledger"):
        create_adapter("sap-hana-9000", {})


def test_broken_plugins_warn_and_the_rest_still_load(plugins_on_path: Path) -> None:
    with pytest.warns(BrokenAdapterWarning) as caught:
        adapters = available_adapters()
    messages = "\n".join(str(warning.message) for warning in caught)
    assert "'broken'" in messages and "ModuleNotFoundError" in messages
    assert "'not_an_adapter'" in messages and "not an ErpAdapter" in messages
    assert "'half'" in messages and "abstract methods" in messages
    assert adapters["ledger"] is LedgerAdapter
    assert adapters["echo"].__module__ == PLUGIN_MODULE
    assert not {"broken", "not_an_adapter", "half"} & set(adapters)


def test_a_third_party_adapter_is_created_by_name(plugins_on_path: Path) -> None:
    with pytest.warns(BrokenAdapterWarning):
        adapter = create_adapter("echo", {})
    assert adapter.health().detail == "echo"


def test_broken_plugin_is_logged_too(
    plugins_on_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.warns(BrokenAdapterWarning):
        available_adapters()
    assert any("'broken'" in record.getMessage() for record in caplog.records)


def test_duplicate_names_keep_the_first_loadable(
    plugins_on_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = tmp_path_factory.mktemp("second")
    _write_distribution(
        second,
        "claimsync_test_plugins_two",
        f"[claimsync.erp_adapters]\necho = {PLUGIN_MODULE}:EchoAdapter\n",
    )
    monkeypatch.syspath_prepend(str(second))
    with pytest.warns(BrokenAdapterWarning) as caught:
        adapters = available_adapters()
    assert any("duplicate name" in str(warning.message) for warning in caught)
    assert adapters["echo"].__name__ == "EchoAdapter"
