"""The batch-file adapter: the contract, then atomic files, manifests and no duplicates ever."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from claimsync_console.erp.base import (
    AdapterConfigError,
    AlreadyReversedError,
    ErpAdapter,
    ErpUnavailableError,
    IdempotencyConflictError,
)
from claimsync_console.erp.batchfile import BatchFileAdapter
from tests.erp.contract import (
    CONTRACT_ACCOUNTS,
    CONTRACT_DATE,
    ErpAdapterContract,
    fresh_key,
    payment_entry,
)


def make(folder: Path, **options: object) -> BatchFileAdapter:
    folder.mkdir(parents=True, exist_ok=True)
    chart = folder.parent / "chart.csv"
    chart.write_text("code,name\n" + "".join(f"{code},x\n" for code in CONTRACT_ACCOUNTS))
    return BatchFileAdapter({"outbound": str(folder), "chart": str(chart), **options})


class TestBatchFileContract(ErpAdapterContract):
    @pytest.fixture
    def erp_adapter(self, tmp_path: Path) -> ErpAdapter:
        return make(tmp_path / "outbound")

    @pytest.fixture
    def unavailable_erp_adapter(self, tmp_path: Path) -> ErpAdapter:
        """The outbound share is not mounted: the folder does not exist."""
        return BatchFileAdapter({"outbound": str(tmp_path / "unmounted")})

    def entry_count(self, adapter: ErpAdapter) -> int | None:
        assert isinstance(adapter, BatchFileAdapter)
        return adapter.entry_count()


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def _csv_keys(folder: Path) -> list[str]:
    keys: list[str] = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            keys.extend(row["idempotency_key"] for row in csv.DictReader(handle))
    return keys


def test_batches_are_sealed_by_size_with_manifest_totals(tmp_path: Path) -> None:
    outbound = tmp_path / "out"
    adapter = make(outbound, batch_size=3)
    entries = [payment_entry(paid=f"{n}.00") for n in (10, 20, 30, 40)]
    for entry in entries:
        adapter.post_entry(entry)
    names = [p.name for p in _data_files(outbound)]
    assert names == ["journal-000001.csv", "journal-000001.jsonl", "journal-000001.manifest.json"]
    manifest = json.loads((outbound / "journal-000001.manifest.json").read_text())
    assert (manifest["entry_count"], manifest["line_count"]) == (3, 12)
    expected = sum((e.total_debit for e in entries[:3]), Decimal(0))
    assert Decimal(manifest["total_debit"]) == Decimal(manifest["total_credit"]) == expected
    for record in manifest["files"]:
        data = (outbound / record["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        assert len(data) == record["bytes"]
    jsonl = (outbound / "journal-000001.jsonl").read_text().splitlines()
    assert [json.loads(line)["idempotency_key"] for line in jsonl] == [
        e.idempotency_key for e in entries[:3]
    ]
    assert adapter.flush() == [outbound / "journal-000002.manifest.json"]
    assert _csv_keys(outbound) == [e.idempotency_key for e in entries for _ in e.lines]


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    outbound = tmp_path / "out"
    adapter = make(outbound, batch_size=2, format="csv")
    adapter.post_entries([payment_entry() for _ in range(5)])
    adapter.close()
    names = [p.name for p in _data_files(outbound)]
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    assert len([n for n in names if n.endswith(".manifest.json")]) == 3
    assert not [n for n in names if n.endswith(".jsonl")]


def test_a_rerun_never_puts_an_entry_in_a_later_batch(tmp_path: Path) -> None:
    outbound = tmp_path / "out"
    entries = [payment_entry() for _ in range(4)]
    first = make(outbound, batch_size=2)
    first.post_entries(entries)
    # The engine crashed before recording the outcomes and a new process posts them all again.
    second = make(outbound, batch_size=2)
    results = second.post_entries([*entries, payment_entry()])
    assert [r.created for r in results] == [False] * 4 + [True]
    second.flush()
    keys = _csv_keys(outbound)
    assert len(keys) == len(set(zip(keys, range(len(keys)), strict=True)))
    assert sorted(set(keys)) == sorted(
        {e.idempotency_key for e in entries} | {results[-1].idempotency_key}
    )
    assert keys.count(entries[0].idempotency_key) == len(entries[0].lines)


def test_a_batch_interrupted_while_writing_is_rewritten_identically(tmp_path: Path) -> None:
    outbound = tmp_path / "out"
    adapter = make(outbound, batch_size=2)
    adapter.post_entries([payment_entry(), payment_entry()])
    original = (outbound / "journal-000001.csv").read_bytes()
    # Simulate a crash after the state sealed the batch but before the manifest was written.
    (outbound / "journal-000001.manifest.json").unlink()
    (outbound / "journal-000001.csv").write_bytes(original[:40])
    with sqlite3.connect(adapter.state_path) as raw:
        raw.execute("UPDATE batches SET written = 0")
    restarted = make(outbound, batch_size=2)
    assert restarted.health().ok
    assert (outbound / "journal-000001.csv").read_bytes() == original
    assert (outbound / "journal-000001.manifest.json").exists()
    assert not (outbound / "journal-000002.manifest.json").exists()


def test_reversal_goes_into_a_later_batch_and_only_once(tmp_path: Path) -> None:
    outbound = tmp_path / "out"
    adapter = make(outbound, batch_size=1, format="jsonl")
    original = adapter.post_entry(payment_entry())
    key = fresh_key("rev")
    reversal = adapter.reverse_entry(original.erp_reference, key, CONTRACT_DATE)
    assert adapter.reverse_entry(original.erp_reference, key, CONTRACT_DATE).created is False
    with pytest.raises(AlreadyReversedError):
        adapter.reverse_entry(original.erp_reference, fresh_key("rev"), CONTRACT_DATE)
    line = json.loads((outbound / "journal-000002.jsonl").read_text())
    assert (line["erp_reference"], line["reversal_of"]) == (
        reversal.erp_reference, original.erp_reference
    )  # fmt: skip
    assert not (outbound / "journal-000003.jsonl").exists()


def test_same_key_other_amounts_is_a_conflict(tmp_path: Path) -> None:
    adapter = make(tmp_path / "out")
    key = fresh_key()
    adapter.post_entry(payment_entry(key))
    with pytest.raises(IdempotencyConflictError):
        adapter.post_entry(payment_entry(key, paid="71.00"))


def test_short_batches_are_sealed_once_old_enough(tmp_path: Path) -> None:
    outbound = tmp_path / "out"
    adapter = make(outbound, batch_size=100, max_wait_seconds=0.0)
    adapter.post_entry(payment_entry())
    assert (outbound / "journal-000001.manifest.json").exists()


def test_a_read_only_outbound_folder_is_unavailable(tmp_path: Path) -> None:
    outbound = tmp_path / "out"
    adapter = make(outbound)
    outbound.chmod(0o500)
    try:
        if adapter.health().ok:  # running as root: permissions do not bind
            pytest.skip("permissions are not enforced for this user")
        with pytest.raises(ErpUnavailableError, match="read-only"):
            adapter.post_entry(payment_entry())
    finally:
        outbound.chmod(0o700)


@pytest.mark.parametrize(
    "options",
    [{}, {"outbound": "x", "batch_size": 0}, {"outbound": "x", "prefix": "a/b"},
     {"outbound": "x", "chart": "/nonexistent/chart.csv"}, {"outbound": "x", "format": "xml"}],
)  # fmt: skip
def test_bad_options_are_config_errors(options: dict[str, object]) -> None:
    with pytest.raises(AdapterConfigError):
        BatchFileAdapter(options)
