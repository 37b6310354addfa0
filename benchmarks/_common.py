"""Shared pieces of the on-demand benchmarks: test files, the reference reader, child processes.

Every measured reader runs in its own child process, so the peak RSS it reports (``ru_maxrss``
of that child) belongs to that reader alone and no warm cache leaks from one reader to the next.
The test files come from the project's own deterministic sample generator and are cached under
``benchmarks/.data/`` (git-ignored), so only the first run pays for generating them.
"""

from __future__ import annotations

import codecs
import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parent / ".data"
CHUNK_SIZE = 1 << 20
SHAPES = ("one-transaction", "interchanges")
WHITESPACE = " \t\r\n\x00\ufeff"


# -- the reference reader ------------------------------------------------------------------------


def segment_chunks(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(element separator, segment texts) for each 1 MiB chunk of an X12 file.

    This is the whole of the reference reader's machinery: delimiters from the first ISA (the
    generated files never change them), then split on the terminator. A segment cut by a chunk
    boundary is carried into the next chunk."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    with path.open("rb") as handle:
        head = decoder.decode(handle.read(CHUNK_SIZE))
        start = head.lstrip(WHITESPACE)
        if not start.startswith("ISA") or len(start) < 106:
            raise ValueError(f"{path} does not start with a whole ISA")
        element, terminator = start[3], start[105]
        tail = ""
        chunk = head
        while chunk:
            segments = (tail + chunk).split(terminator)
            tail = segments.pop()
            yield element, segments
            chunk = decoder.decode(handle.read(CHUNK_SIZE))
        tail += decoder.decode(b"", final=True)
        if tail.strip(WHITESPACE):
            yield element, [tail]


def reference_claims(path: Path) -> tuple[int, Decimal]:
    """Count CLP segments and sum CLP04 as Decimal; nothing more (no envelope, no findings)."""
    count = 0
    paid = Decimal(0)
    for element, segments in segment_chunks(path):
        for text in segments:
            elements = text.strip(WHITESPACE).split(element)
            if elements[0] == "CLP":
                count += 1
                paid += Decimal(elements[4])
    return count, paid


# -- test files ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchFile:
    path: Path
    claims: int
    paid: Decimal
    shape: str

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 1e6

    def describe(self) -> str:
        what = (
            "one interchange, one 835 transaction"
            if self.shape == "one-transaction"
            else ("many interchanges concatenated")
        )
        return f"{self.path.name}: {self.claims} claims, {self.size_mb:.1f} MB, {what}"


def ensure_835(claims: int, seed: int = 42, shape: str = "one-transaction") -> BenchFile:
    """A single 835 file with ``claims`` claim payments, generated once and then cached.

    ``one-transaction`` puts every claim payment of the generated checks into one ST..SE (BPR02
    recomputed, PLBs dropped, SE01 recounted): the hardest case for streaming, because nothing
    closes until the end. ``interchanges`` concatenates the generated check files whole, as a
    clearing house batch would, so it holds at least ``claims`` payments."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}")
    target = DATA_DIR / f"835_{claims}_{shape}_s{seed}.x12"
    if not target.exists():
        _build(target, claims, seed, shape)
    count, paid = reference_claims(target)
    return BenchFile(target, count, paid, shape)


def _build(target: Path, claims: int, seed: int, shape: str) -> None:
    from claimsync_console.engine.samplegen import generate

    billed = claims
    while True:
        work = DATA_DIR / f"gen-{billed}-s{seed}"
        print(f"generating {billed} billed claims (seed {seed}) for {target.name} ...", flush=True)
        generate(billed, seed, work)
        sources = sorted((work / "835").glob("*.x12"))
        partial = target.with_suffix(".partial")
        done = (
            _one_transaction(sources, claims, partial)
            if shape == "one-transaction"
            else _concatenated(sources, claims, partial)
        )
        shutil.rmtree(work)
        if done:
            partial.replace(target)
            return
        partial.unlink(missing_ok=True)
        billed = int(billed * 1.2) + 100  # reversals and unknown claims vary; ask for more


def _segments(path: Path) -> tuple[str, list[str]]:
    text = path.read_text(encoding="utf-8")
    terminator = text[105]
    return terminator, [s.strip(WHITESPACE) for s in text.split(terminator) if s.strip()]


def _one_transaction(sources: Sequence[Path], claims: int, out: Path) -> bool:
    """Write the first ``claims`` CLP loops of ``sources`` as one 835; False if too few."""
    terminator, first = _segments(sources[0])
    header = first[: next(i for i, s in enumerate(first) if s.startswith("LX*"))]
    body: list[str] = []
    count, paid = 0, Decimal(0)
    for source in sources:
        in_claim = False
        for segment in _segments(source)[1]:
            sid = segment.split("*", 1)[0]
            if sid == "CLP":
                if count == claims:
                    break
                count += 1
                paid += Decimal(segment.split("*")[4])
                in_claim = True
            elif sid in ("PLB", "SE", "LX"):
                in_claim = False
            if in_claim:
                body.append(segment)
        if count == claims:
            break
    if count < claims:
        return False
    isa, gs, st = header[0], header[1], header[2]
    bpr = header[3].split("*")
    bpr[2] = str(paid)
    header[3] = "*".join(bpr)
    st02 = st.split("*")[2]
    se_count = len(header) - 2 + 1 + len(body) + 1
    trailer = [
        f"SE*{se_count}*{st02}",
        f"GE*1*{gs.split('*')[6]}",
        f"IEA*1*{isa.split('*')[13]}",
    ]
    sep = terminator + "\n"
    with out.open("w", encoding="utf-8") as handle:
        for segment in [*header, "LX*1", *body, *trailer]:
            handle.write(segment + sep)
    return True


def _concatenated(sources: Sequence[Path], claims: int, out: Path) -> bool:
    count = 0
    with out.open("wb") as handle:
        for source in sources:
            data = source.read_bytes()
            handle.write(data)
            count += data.count(b"CLP*")
            if count >= claims:
                return True
    return False


# -- child processes -----------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux's ``ru_maxrss`` survives fork and exec, so a child would report at least its
    parent's size (measured: 214 MB for a bare child of a 200 MB parent). ``VmHWM`` belongs to
    the address space exec created, so it is this reader's alone; other systems fall back."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result: dict[str, Any]) -> None:
    """The child's one line of output: JSON, money as a decimal string."""
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result, default=str), flush=True)


def run_child(script: Path, args: Sequence[str], timeout: float = 3600) -> dict[str, Any]:
    """Run ``script --child ...`` in a fresh interpreter and return its JSON result."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["paid"] = Decimal(result["paid"])
    return result


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with right-aligned numbers, ready to paste into a Markdown note."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# -- the engine's outbox worker ------------------------------------------------------------------


def engine_drain_rate(
    store_file: Path, batch: Sequence[Any], adapter: Any, workers: int, batch_size: int = 100
) -> float:
    """Entries per second through the real outbox worker as deployed: ``batch`` queued in a
    fresh SQLite store, then ``workers`` threads draining it through one shared ``adapter``
    (closed afterwards). Every entry must come out posted."""
    import threading
    import time
    from datetime import UTC, datetime

    from claimsync_console.engine.outbox import enqueue_entry
    from claimsync_console.engine.runtime import open_store
    from claimsync_console.engine.worker import drain

    store = open_store(f"sqlite+pysqlite:///{store_file}")
    now = datetime.now(UTC)
    with store.sessions.begin() as session:
        for entry in batch:
            enqueue_entry(session, entry, kind="payment", amount=entry.total_debit,
                          cash_amount=entry.lines[0].debit, now=now)  # fmt: skip
    posted: list[int] = []

    def one(n: int) -> None:
        report = drain(store.sessions, adapter, worker_id=f"bench-{n}", batch_size=batch_size)
        posted.append(report.posted)

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    adapter.close()
    store.dispose()
    assert sum(posted) == len(batch), (sum(posted), len(batch))
    return len(batch) / elapsed
