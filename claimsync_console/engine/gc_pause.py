"""Pause CPython's cyclic garbage collector while one bulk load runs.

A file's load allocates millions of small objects (segments, domain objects, row tuples) that
hold no reference cycles: reference counting frees every one of them. The cyclic collector
still wakes every 700 allocations and walks the young ones, and then the older ones again and
again as they survive: a third of a 10k-claim ingest's CPU went there (benchmarks/
bench_ingest.py). Pausing it for the load, and only for the load, gives that back; the cycles
a load does leave (a few per SQL statement) are collected as usual once it ends.

The switch is process-wide, so overlapping pauses (two threads loading) are counted: the
collector comes back when the last one ends, and never if it was off before the first.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
