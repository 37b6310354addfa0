"""The collector is off exactly while loads run, and comes back as it was."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine.gc_pause import paused_gc
from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.store import queries
from tests.engine.test_ingest import MANAGED_CARE_835


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_paused_inside_and_back_after_even_on_an_error() -> None:
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), paused_gc():
        raise ValueError("a load failed")
    assert gc.isenabled()


def test_overlapping_pauses_end_with_the_last_one() -> None:
    first_in, second_done = threading.Event(), threading.Event()
    seen: list[bool] = []

    def other_load() -> None:
        with paused_gc():
            first_in.set()
            second_done.wait(5)
            seen.append(gc.isenabled())

    thread = threading.Thread(target=other_load)
    thread.start()
    first_in.wait(5)
    with paused_gc():
        pass  # this load ends while the other still runs
    second_done.set()
    thread.join(5)
    assert seen == [False]  # the first to end did not turn it back on under the other
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()


def test_ingest_loads_with_the_collector_paused(
    db_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_insert = queries.insert_claim_payments
    during: list[bool] = []

    def observed(session: Session, rows: Any) -> list[int]:
        during.append(gc.isenabled())
        return real_insert(session, rows)

    monkeypatch.setattr(queries, "insert_claim_payments", observed)
    (result,) = ingest_paths(db_sessions, [Path(MANAGED_CARE_835)])
    assert result.status == "loaded"
    assert during and not any(during)
    assert gc.isenabled()
