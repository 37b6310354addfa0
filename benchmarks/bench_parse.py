"""Parse benchmark: our 835 reader against a minimal reference reader and pyx12 (issue #2).

    python benchmarks/bench_parse.py                     # 10k and 100k claims, 5 runs each
    python benchmarks/bench_parse.py --claims 20000 --repeat 5 --pyx12-claims 0

Each run of a reader parses the same single 835 file in a fresh child process, which reports
its own peak RSS; the readers take turns, and the best of ``--repeat`` runs counts. All readers
must agree on the claim count and the CLP04 total, or the benchmark fails. Goals: ours within
1.5x of the reference reader, and a peak RSS of at most 60 MB at 100k claims. CPU seconds are
printed next to wall seconds: on a machine shared with other work, they are the steadier ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import (
    SHAPES,
    BenchFile,
    emit,
    ensure_835,
    reference_claims,
    run_child,
    table,
    verdict,
)

SPEED_GOAL = 1.5
RSS_GOAL_MB = 60.0
RSS_GOAL_CLAIMS = 100_000


# -- the readers, as run inside a child ----------------------------------------------------------


Read = Callable[[Path], tuple[int, Decimal]]


def reference() -> Read:
    return reference_claims


def floor() -> Read:
    """The least work the issue's balancing findings need, with nothing else: the reference's
    split plus every amount they compare as a Decimal (CLP03/04, SVC02/03, each CAS amount,
    BPR02, PLB) and the three identities checked. No envelope, no objects, no other findings.
    Its ratio to the reference is a floor under any reader with the full semantics."""
    from _common import WHITESPACE, segment_chunks

    def read(path: Path) -> tuple[int, Decimal]:
        dec, zero = Decimal, Decimal(0)
        count, paid, plb, bpr, broken = 0, zero, zero, zero, 0
        claim_gap = line_gap = zero  # charge - paid - CAS so far; zero when balanced
        in_line = False
        for element, segments in segment_chunks(path):
            for text in segments:
                e = text.strip(WHITESPACE).split(element)
                tag = e[0]
                if tag == "CAS":
                    total = sum((dec(e[i]) for i in range(3, len(e), 3) if e[i]), zero)
                    claim_gap -= total
                    if in_line:
                        line_gap -= total
                elif tag == "SVC":
                    broken += in_line and line_gap != 0
                    in_line, line_gap = True, dec(e[2]) - dec(e[3] or "0")
                elif tag == "CLP":
                    broken += (count > 0 and claim_gap != 0) + (in_line and line_gap != 0)
                    count, in_line = count + 1, False
                    amount = dec(e[4])
                    paid += amount
                    claim_gap = dec(e[3]) - amount
                elif tag == "BPR":
                    bpr = dec(e[2])
                elif tag == "PLB":
                    plb += sum((dec(e[i]) for i in range(4, len(e), 2) if e[i]), zero)
                elif tag == "SE":
                    broken += (count > 0 and claim_gap != 0) + (in_line and line_gap != 0)
                    in_line, claim_gap = False, zero
        if broken or bpr != paid - plb:
            raise SystemExit(f"floor: {broken} unbalanced claims or lines; BPR02 {bpr}")
        return count, paid

    return read


class _Piece:
    """The cheapest Python-level object a reader could hand back for one segment."""

    __slots__ = ("elements", "tag")

    def __init__(self, tag: str, elements: list[str]) -> None:
        self.tag = tag
        self.elements = elements


def objects() -> Read:
    """The reference plus one two-slot object per segment, built by a Python ``__init__``, and
    nothing else: no Decimal beyond CLP04, no dispatch, no findings. Every domain object of the
    issue's semantics (each CAS triplet, DTM, REF, AMT, SVC, CLP) is at least one such object,
    and a frozen dataclass costs more than this, so its ratio is a floor under any pure-CPython
    reader that returns the issue's domain objects."""
    from _common import WHITESPACE, segment_chunks

    def read(path: Path) -> tuple[int, Decimal]:
        count, paid = 0, Decimal(0)
        piece = _Piece
        for element, segments in segment_chunks(path):
            for text in segments:
                elements = text.strip(WHITESPACE).split(element)
                made = piece(elements[0], elements)
                if made.tag == "CLP":
                    count += 1
                    paid += Decimal(elements[4])
        return count, paid

    return read


def ours() -> Read:
    """The project's reader with full semantics: envelope, findings, every domain object."""
    from claimsync_console.domain import ClaimPayment
    from claimsync_console.x12.document import read_document

    def read(path: Path) -> tuple[int, Decimal]:
        count, paid = 0, Decimal(0)
        with path.open("rb") as handle:
            reader = read_document(handle, path.name)
            for item in reader:
                if type(item) is ClaimPayment:
                    count += 1
                    paid += item.paid
        if reader.has_fatal:
            raise SystemExit(f"our reader found fatal problems: {reader.findings[:3]}")
        return count, paid

    return read


def pyx12() -> Read:
    """pyx12's map-aware X12ContextReader, read as the cross-check test reads it."""
    import pyx12.error_handler
    import pyx12.params
    import pyx12.x12context

    def read(path: Path) -> tuple[int, Decimal]:
        reader = pyx12.x12context.X12ContextReader(
            pyx12.params.params(), pyx12.error_handler.errh_null(), str(path)
        )
        count, paid = 0, Decimal(0)
        for node in reader.iter_segments("2100"):
            if node.id == "2100":
                count += 1
                paid += Decimal(node.get_value("CLP04") or "0")
        return count, paid

    return read


#: name -> a factory that does the imports (outside the timed runs) and returns the reader
READERS: dict[str, Callable[[], Read]] = {
    "reference": reference,
    "floor": floor,
    "objects": objects,
    "ours": ours,
    "pyx12": pyx12,
}


def child(name: str, path: Path, repeat: int) -> None:
    read = READERS[name]()
    best = cpu = float("inf")
    count, paid = 0, Decimal(0)
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        count, paid = read(path)
        best = min(best, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - cpu_started)
    emit({"reader": name, "claims": count, "paid": str(paid), "seconds": best, "cpu": cpu})


# -- the parent ----------------------------------------------------------------------------------


def pyx12_installed() -> bool:
    try:
        import pyx12.x12context  # noqa: F401
    except ImportError:
        return False
    return True


def measure(bench: BenchFile, readers: list[str], repeat: int) -> list[dict[str, Any]]:
    """Best of ``repeat`` runs per reader, one fresh child per run, the readers taking turns.

    Taking turns matters on a shared machine: a burst of someone else's load then slows one
    run of each reader instead of every run of one of them. Peak RSS is the largest a run of
    that reader reached."""
    best: dict[str, dict[str, Any]] = {}
    for turn in range(repeat):
        for name in readers:
            if name == "pyx12" and turn:
                continue
            args = ["--child", name, "--file", str(bench.path), "--repeat", "1"]
            result = run_child(Path(__file__), args)
            if (result["claims"], result["paid"]) != (bench.claims, bench.paid):
                raise SystemExit(
                    f"{name} disagrees on {bench.path.name}: {result['claims']} claims, paid "
                    f"{result['paid']}; the reference reads {bench.claims}, paid {bench.paid}"
                )
            print(
                f"  {name:<9} {result['seconds']:8.3f} s  {result['peak_rss_mb']:6.1f} MB",
                flush=True,
            )
            kept = best.setdefault(name, result)
            kept["peak_rss_mb"] = max(kept["peak_rss_mb"], result["peak_rss_mb"])
            kept["seconds"] = min(kept["seconds"], result["seconds"])
            kept["cpu"] = min(kept["cpu"], result["cpu"])
            kept["runs"] = turn + 1 if name != "pyx12" else 1
    return [best[name] for name in readers]


def report(bench: BenchFile, results: list[dict[str, Any]]) -> tuple[str, list[str]]:
    reference = next(r for r in results if r["reader"] == "reference")
    rows, goals = [], []
    for r in results:
        ratio = r["seconds"] / reference["seconds"]
        cpu_ratio = r["cpu"] / reference["cpu"]
        rows.append(
            [
                r["reader"],
                f"{r['claims']:,}",
                f"{r['seconds']:.3f}",
                f"{r['claims'] / r['seconds']:,.0f}",
                f"{r['peak_rss_mb']:.1f}",
                f"{ratio:.2f}x",
                f"{r['cpu']:.3f}",
                f"{cpu_ratio:.2f}x",
            ]
        )
        if r["reader"] == "ours":
            goals.append(
                f"ours within {SPEED_GOAL}x of the reference at {bench.claims:,} claims: "
                f"{verdict(ratio <= SPEED_GOAL)} ({ratio:.2f}x wall, {cpu_ratio:.2f}x CPU)"
            )
            if bench.claims >= RSS_GOAL_CLAIMS:
                rss = r["peak_rss_mb"]
                goals.append(
                    f"ours peak RSS <= {RSS_GOAL_MB:.0f} MB at {bench.claims:,} claims: "
                    f"{verdict(rss <= RSS_GOAL_MB)} ({rss:.1f} MB)"
                )
    headers = ["reader", "claims", "seconds", "claims/s", "peak RSS MB", "vs reference",
               "CPU s", "CPU vs reference"]  # fmt: skip
    return f"{bench.describe()}\n\n" + table(headers, rows), goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--claims", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=5, help="runs per reader; the best counts")
    parser.add_argument("--shape", choices=SHAPES, default="one-transaction")
    parser.add_argument(
        "--pyx12-claims",
        type=int,
        default=10_000,
        help="run pyx12 only on sizes up to this many claims (0: never)",
    )
    parser.add_argument("--child", choices=sorted(READERS), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.file, args.repeat)
        return 0
    has_pyx12 = pyx12_installed()
    tables, goals = [], []
    for claims in args.claims:
        bench = ensure_835(claims, args.seed, args.shape)
        print(f"{bench.describe()}", flush=True)
        readers = ["reference", "floor", "objects", "ours"]
        if has_pyx12 and claims <= args.pyx12_claims:
            readers.append("pyx12")
        text, met = report(bench, measure(bench, readers, args.repeat))
        tables.append(text)
        goals.extend(met)
    print()
    print("\n\n".join(tables))
    print()
    if not has_pyx12:
        print("pyx12 is not installed, so it was not measured (pip install pyx12).")
    print(
        "pyx12 runs once, and only on sizes up to --pyx12-claims: it is two orders of "
        "magnitude slower."
    )
    for line in goals:
        print(f"goal: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
