"""Sending a batch's chunks to Tryton concurrently (the ``parallel_requests`` option).

One trytond process is one Python interpreter: its per-line validation of ``account.move``
(about 85% of a batch's time) runs under one GIL, so a single server tops out at one core. With
several trytond processes serving the same PostgreSQL database (listed in ``url``), chunks sent
at the same time are created on several cores at once. Why the rules below:

* Posting locks the move sequence with ``NOWAIT``: two posts at once make trytond roll one back
  and retry it (or answer 503), so posts are serialised by the caller; creates are not.
* Chunks that share an idempotency key are posted one after another: two concurrent searches
  would both miss the key and create the move twice.
* A refusal still raises the first failing chunk's error, in order; chunks after it may already
  be posted (unlike one at a time). A retry finds those by their keys (``created=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from claimsync_console.erp.base import AdapterConfigError
from claimsync_console.erp.tryton_rpc import TrytonRpc

T = TypeVar("T")
R = TypeVar("R")


def run_chunks(
    chunks: Sequence[Sequence[T]],
    post: Callable[[int, Sequence[T]], list[R]],
    workers: int,
) -> list[R]:
    """``post(index, chunk)`` for every chunk on ``workers`` threads; results in chunk order.
    Every chunk is waited for before the first failure (in chunk order) is raised, so no
    request is left running behind the caller's back."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tryton-post") as pool:
        futures: list[Future[list[R]]] = [
            pool.submit(post, index, chunk) for index, chunk in enumerate(chunks)
        ]
    results: list[R] = []
    for future in futures:
        results.extend(future.result())  # re-raises the first failing chunk's error
    return results


def keys_unique(keys: Sequence[str]) -> bool:
    return len(set(keys)) == len(keys)


def clients(urls: str, database: str, login: str, password: str, timeout: float) -> list[TrytonRpc]:
    """One client per base URL: ``url`` may list several trytond processes on one database."""
    found = [part.strip() for part in urls.split(",") if part.strip()]
    if not found:
        raise AdapterConfigError("option 'url' names no trytond")
    return [TrytonRpc(url, database, login, password, timeout=timeout) for url in found]
