"""Where the shared public X12 corpus lives, and its INDEX rows."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

CORPUS_DIR = Path(
    os.environ.get(
        "CLAIMSYNC_X12_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "x12-corpus"
    )
)
DATA_KINDS = ("835", "837P", "837I", "277CA")


@dataclass(frozen=True)
class CorpusFile:
    local_file: str
    transaction_type: str
    is_valid: str
    number_of_claims: str
    notes: str

    @property
    def path(self) -> Path:
        return CORPUS_DIR / self.local_file

    @property
    def is_reference_data(self) -> bool:
        return self.transaction_type.startswith("other(spec")

    @property
    def claim_count(self) -> int | None:
        return int(self.number_of_claims) if self.number_of_claims.isdigit() else None


def corpus_rows() -> list[CorpusFile]:
    index = CORPUS_DIR / "INDEX.tsv"
    if not index.exists():
        return []
    with index.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        return [
            CorpusFile(
                row["local_file"],
                row["transaction_type"],
                row["is_valid"],
                row["number_of_claims"],
                row["notes"],
            )
            for row in reader
        ]
