"""Which files of a sample folder to load, and in which order.

A generated folder carries ``manifest.json`` listing its files in billing order (837s, then
277CAs, then 835s by payment date); loading in that order is what a real feed would do.
"""

from __future__ import annotations

import json
from pathlib import Path

X12_SUFFIXES = frozenset({".x12", ".edi", ".835", ".837", ".277", ".txt", ".dat"})


def sample_files(folder: Path) -> list[Path]:
    manifest = folder / "manifest.json"
    if manifest.is_file():
        listed = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
        paths = [folder / entry["path"] for entry in listed if isinstance(entry, dict)]
        if paths and all(p.is_file() for p in paths):
            return paths
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in X12_SUFFIXES)
