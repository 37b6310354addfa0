"""The sample set's ``manifest.json``: what was planted and what every check must add up to.

The tests and the engine's end-to-end test read it instead of the generator's objects, so it
lists files in the order an ingest should take them: original 837s, their 277CAs, replacement
837s, then the 835s by payment date.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from claimsync_console.domain import ZERO
from claimsync_console.engine.samplegen_data import BASE_DATE, UNUSUAL_CARCS


@dataclass(frozen=True, slots=True)
class GenerationSummary:
    seed: int
    claims: int
    out_dir: Path
    manifest_path: Path
    files: tuple[str, ...]
    counts: dict[str, int]
    problems: dict[str, int]
    paid_total: Decimal
    payment_total: Decimal


def write_manifest(
    out: Path,
    seed: int,
    claims: int,
    tally: Counter[str],
    planted: dict[str, list[str]],
    files: list[dict[str, Any]],
    checks: list[dict[str, Any]],
) -> GenerationSummary:
    """``tally`` holds the generator's counters, ``planted`` the PCNs of each planted problem."""
    files_835 = sorted(
        (f for f in files if f["kind"] == "835"),
        key=lambda f: (f["payment_date"], f["path"]),
    )
    ordered = [f for f in files if f["kind"] in ("837P", "837I") and not f["replacement"]]
    ordered += [f for f in files if f["kind"] == "277CA"]
    ordered += [f for f in files if f["kind"] in ("837P", "837I") and f["replacement"]]
    ordered += files_835
    paid = sum((Decimal(c["paid_total"]) for c in checks), ZERO)
    payment = sum((Decimal(c["payment_amount"]) for c in checks), ZERO)
    plb = sum((Decimal(c["plb_total"]) for c in checks), ZERO)
    counts = dict(sorted(tally.items()))
    counts.update(claims_billed=claims, checks=len(checks), files=len(ordered))
    problems = {name: len(pcns) for name, pcns in planted.items()}
    manifest = {
        "generator": "claimsync_console.engine.samplegen",
        "format_version": 1,
        "seed": seed,
        "claims": claims,
        "base_date": BASE_DATE.isoformat(),
        "unusual_carcs": [f"{g}-{c}" for g, c in UNUSUAL_CARCS],
        "counts": counts,
        "problems": problems,
        "problem_pcns": planted,
        "totals": {"paid": str(paid), "plb": str(plb), "payment": str(payment)},
        "checks": checks,
        "files": ordered,
    }
    manifest_path = out / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return GenerationSummary(
        seed,
        claims,
        out,
        manifest_path,
        tuple(f["path"] for f in ordered),
        counts,
        problems,
        paid,
        payment,
    )
