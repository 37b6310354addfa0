"""Writing batch files atomically, the manifest's control totals, and the state's schema.

Atomic means: the bytes go to a hidden temporary name in the *same* folder (a rename is only
atomic within one file system), are fsynced, then renamed over the final name, and the folder
is fsynced so the rename itself survives a power cut. An importer therefore sees either no
file or the whole file, never a prefix of it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from claimsync_console.domain.journal import JournalEntry

MANIFEST_FORMAT = "claimsync-journal-batch/1"
CSV_COLUMNS = (
    "batch", "erp_reference", "idempotency_key", "entry_date", "line_no", "account", "debit",
    "credit", "cost_centre", "memo", "description", "reference", "reversal_of",
)  # fmt: skip

#: (erp_reference, entry as wire JSON, reversal_of reference or None)
BatchEntry = tuple[str, dict[str, Any], str | None]


def write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some systems cannot open a folder; the rename is still atomic
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def csv_bytes(batch: int, entries: list[BatchEntry]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for reference, wire, reversal_of in entries:
        for number, line in enumerate(wire["lines"], start=1):
            writer.writerow(
                [batch, reference, wire["idempotency_key"], wire["entry_date"], number,
                 line["account"], line["debit"], line["credit"], line["cost_centre"],
                 line["memo"], wire["description"], wire["reference"], reversal_of or ""]
            )  # fmt: skip
    return out.getvalue().encode("utf-8")


def jsonl_bytes(batch: int, entries: list[BatchEntry]) -> bytes:
    lines = [
        json.dumps({"batch": batch, "erp_reference": ref, "reversal_of": rev, **wire})
        for ref, wire, rev in entries
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_batch_files(
    outbound: Path, stem: str, batch: int, entries: list[BatchEntry], fmt: str
) -> list[dict[str, Any]]:
    """Write the data files of one batch; returns their manifest records."""
    makers = {"csv": csv_bytes, "jsonl": jsonl_bytes}
    chosen = ("csv", "jsonl") if fmt == "both" else (fmt,)
    records = []
    for suffix in chosen:
        data = makers[suffix](batch, entries)
        path = outbound / f"{stem}.{suffix}"
        write_atomically(path, data)
        records.append(
            {"name": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )
    return records


def manifest_for(
    batch: int, sealed_at: str, entries: list[BatchEntry], files: list[dict[str, Any]]
) -> dict[str, Any]:
    """Control totals an importer checks before it books anything: counts, debit and credit
    sums (equal, as every entry balances), and a digest of the idempotency keys in order."""
    debit = credit = Decimal("0.00")
    lines = 0
    keys = hashlib.sha256()
    for _ref, wire, _rev in entries:
        keys.update(wire["idempotency_key"].encode() + b"\n")
        for line in wire["lines"]:
            debit += Decimal(line["debit"])
            credit += Decimal(line["credit"])
            lines += 1
    return {
        "format": MANIFEST_FORMAT,
        "batch": batch,
        "sealed_at": sealed_at,
        "entry_count": len(entries),
        "line_count": lines,
        "total_debit": str(debit),
        "total_credit": str(credit),
        "first_reference": entries[0][0] if entries else None,
        "last_reference": entries[-1][0] if entries else None,
        "idempotency_keys_sha256": keys.hexdigest(),
        "files": files,
    }


# The state database: every accepted key, and which batch (if any) it was sealed into.
STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    body TEXT NOT NULL,
    reversal_of INTEGER UNIQUE REFERENCES entries (seq),
    batch INTEGER REFERENCES batches (id),
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_pending ON entries (batch, seq);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    sealed_at TEXT NOT NULL,
    written INTEGER NOT NULL DEFAULT 0
);
"""


def fingerprint(entry: JournalEntry) -> str:
    """Date and amounts per account; free text left out, as in the ledger."""
    lines = ";".join(f"{ln.account}:{ln.debit}:{ln.credit}:{ln.cost_centre}" for ln in entry.lines)
    return hashlib.sha256(f"{entry.entry_date.isoformat()}|{lines}".encode()).hexdigest()


def parse_ref(erp_reference: str) -> int | None:
    """``BF-00000042`` -> 42; anything else is no reference of ours."""
    text = erp_reference.strip()
    if not text.startswith("BF-") or not text[3:].isdigit():
        return None
    return int(text[3:])
