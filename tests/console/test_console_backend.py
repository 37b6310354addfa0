"""The console's door to data: keyset pages in every sort order, filters, counts, groups."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.console.widgets.queue_rows import row_cells
from claimsync_console.engine.console_backend import SORTS, ConsoleBackend, QueueFilter, UsageError
from claimsync_console.settings import Settings
from claimsync_console.store.db import make_engine, session_factory, upgrade_to_head
from claimsync_console.store.models_engine import AdapterHealth
from claimsync_console.store.queries_engine import open_work_items

from .conftest import NOW, seed


@pytest.fixture
def console_sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Here on SQLite and on PostgreSQL (the row-value seeks and the scans differ most)."""
    engine = make_engine(db_url)
    upgrade_to_head(engine)
    sessions = session_factory(engine)
    seed(sessions)
    yield sessions
    engine.dispose()


def _walk(backend: ConsoleBackend, queue: str, sort: str, descending: bool, size: int) -> list[int]:
    """Every id of the queue, page by page, following the keyset cursor."""
    seen: list[int] = []
    after = None
    while True:
        page = backend.queue_page(queue, None, sort, after, size, descending=descending)
        seen.extend(row.id for row in page.rows)
        if not page.has_more:
            return seen
        after = page.last_key


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("descending", [False, True])
def test_paging_visits_every_item_once_in_order(
    backend: ConsoleBackend, sort: str, descending: bool
) -> None:
    whole = backend.queue_page("unmatched", None, sort, None, 100, descending=descending)
    assert whole.total == 12 and not whole.has_more
    keys = [row.key(sort) for row in whole.rows]
    assert keys == sorted(keys, reverse=descending)
    assert _walk(backend, "unmatched", sort, descending, 5) == [r.id for r in whole.rows]


def test_oldest_first_by_default_and_previous_page(backend: ConsoleBackend) -> None:
    first = backend.queue_page("unmatched", limit=5)
    assert [r.created_at for r in first.rows] == sorted(r.created_at for r in first.rows)
    assert not first.has_previous and first.has_more
    second = backend.queue_page("unmatched", after_key=first.last_key, limit=5)
    assert second.has_previous
    back = backend.queue_page("unmatched", before_key=second.first_key, limit=5)
    assert [r.id for r in back.rows] == [r.id for r in first.rows]
    assert not back.has_previous


def test_filters_narrow_in_the_database(backend: ConsoleBackend) -> None:
    wanted = QueueFilter.parse("payer:smpbc 100..400")
    page = backend.queue_page("unmatched", wanted)
    assert page.rows and page.total == len(page.rows)
    assert all(r.payer_id == "SMPBC" and 100 <= r.amount <= 400 for r in page.rows)
    text = backend.queue_page("denial", QueueFilter.parse("pcnde0003"))
    assert [r.claim for r in text.rows] == ["PCNDE0003"]
    assert backend.queue_page("denial", QueueFilter.parse("nothing-like-this")).rows == []


def test_filter_language() -> None:
    parsed = QueueFilter.parse('payer:"Blue Cross" >1,000.5 closed account')
    assert parsed.payer == "Blue Cross"
    assert parsed.min_amount == Decimal("1000.50") and parsed.max_amount is None
    assert parsed.text == "closed account"
    assert QueueFilter.parse("<=50").max_amount == Decimal("50.00")
    assert QueueFilter.parse("..75").max_amount == Decimal("75.00")
    assert QueueFilter.parse("").empty
    with pytest.raises(UsageError, match="empty"):
        QueueFilter.parse("500..100")


def test_bounds_echo_as_they_mean_and_parse_back() -> None:
    """Issue #4: ``>1000`` used to echo as ``1000.00..``, which reads as at least 1000."""
    for typed, echoed in [(">1000", ">1000.00"), (">=1000", ">=1000.00"), ("<50", "<50.00"),
                          ("<=50", "<=50.00"), ("100..500", "100.00..500.00"),
                          ("..75", "<=75.00"), ("50..", ">=50.00"),
                          (">100 <=200", ">100.00 <=200.00")]:  # fmt: skip
        parsed = QueueFilter.parse(typed)
        assert parsed.describe() == echoed
        assert QueueFilter.parse(parsed.describe()) == parsed  # the box gets it back
    with pytest.raises(UsageError, match="empty"):
        QueueFilter.parse(">100 <100.01")


def test_strict_bounds_exclude_the_amount_itself(
    backend: ConsoleBackend, console_sessions: sessionmaker[Session]
) -> None:
    with console_sessions.begin() as session:
        open_work_items(session, [{
            "kind": "denial", "source_key": "denial-even", "amount": Decimal("1000.00"),
            "payer_id": "SMPAE", "payer_name": "ACME", "patient_control_number": "PCNEVEN",
            "trace_number": "TRNEVEN", "error": "denied (CO-197)", "error_signature": "",
        }], now=NOW)  # fmt: skip

    def claims(typed: str) -> list[str]:
        return [r.claim for r in backend.queue_page("denial", QueueFilter.parse(typed)).rows]

    assert "PCNEVEN" not in claims(">1000")
    assert "PCNEVEN" in claims(">=1000")
    assert "PCNEVEN" in claims("1000..1000")
    assert "PCNEVEN" not in claims("<1000") and "PCNEVEN" in claims("<=1000")
    assert "PCNEVEN" in claims(">999.99") and "PCNEVEN" not in claims("<1000.00")


def test_dead_letters_group_by_signature_biggest_first(backend: ConsoleBackend) -> None:
    groups = backend.error_groups("dead-letter")
    assert [(g.error_signature, g.count) for g in groups] == [
        ("erp-422-account-closed", 5), ("erp-422-period-locked", 3), ("erp-400-memo", 1),
    ]  # fmt: skip
    assert groups[0].example.startswith("ERP said 422")
    one = backend.queue_page("dead-letter", QueueFilter(error_signature="erp-400-memo"))
    assert len(one.rows) == 1


def test_unknown_queue_or_sort_is_a_usage_error(backend: ConsoleBackend) -> None:
    with pytest.raises(UsageError, match="unknown queue"):
        backend.queue_page("nope")
    with pytest.raises(UsageError, match="unknown sort"):
        backend.queue_page("denial", sort="colour")


def test_dashboard_uses_the_injected_clock(backend: ConsoleBackend) -> None:
    board = backend.dashboard()
    assert board.at == backend.now()
    tiles = {t.kind: t.count for t in board.queues}
    assert tiles["dead_letter"] == 9 and tiles["unmatched_remittance"] == 12


def test_claim_prefix_seeks_the_claim_number(backend: ConsoleBackend) -> None:
    page = backend.queue_page("unmatched", QueueFilter.parse("claim:pcnun000"))
    assert sorted(r.claim for r in page.rows) == [f"PCNUN{n:04d}" for n in range(10)]
    assert QueueFilter.parse("claim:PCNUN0003").describe() == "claim:PCNUN0003"


@pytest.mark.parametrize("sort", SORTS)
def test_free_text_reads_the_same_rows_past_its_window(
    backend: ConsoleBackend, sort: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rare word, not found among the first rows, falls back to reading the table in storage
    order: the pages (and their order) are the same as found through the window."""
    from claimsync_console.store import queries_queue

    wanted = QueueFilter.parse("smpbc")
    through_window = _pages(backend, wanted, sort)
    monkeypatch.setattr(queries_queue, "TEXT_WINDOW", 2)
    assert _pages(backend, wanted, sort) == through_window
    assert len(through_window) == 4  # every third unmatched item is SMPBC's


def _pages(backend: ConsoleBackend, wanted: QueueFilter, sort: str) -> list[int]:
    seen: list[int] = []
    after = None
    while True:
        page = backend.queue_page("unmatched", wanted, sort, after, 3)
        seen.extend(row.id for row in page.rows)
        if not page.has_more:
            return seen
        after = page.last_key


def test_free_text_finds_any_part_of_a_field_through_the_index(backend: ConsoleBackend) -> None:
    """Part of a claim number (its middle too), a word inside an error, any case; the same on
    SQLite (FTS5 trigrams) and PostgreSQL (pg_trgm)."""

    def claims(queue: str, typed: str) -> list[str]:
        return sorted(r.claim for r in backend.queue_page(queue, QueueFilter.parse(typed)).rows)

    assert claims("denial", "de0003") == ["PCNDE0003"]
    assert claims("denial", "CNDE000") == [f"PCNDE{n:04d}" for n in range(7)]
    assert len(claims("dead-letter", "is closed for")) == 5
    assert claims("mapping", "CARC:co-b7") == [f"PCNMA{n:04d}" for n in range(4)]
    assert claims("denial", "closed for") == []
    page = backend.queue_page("dead-letter", QueueFilter.parse("ERP said 422 payer:smpae"))
    assert page.rows and all(r.payer_id == "SMPAE" and "422" in r.error for r in page.rows)


# --------------------------------------------------------------------------- second review


def test_the_erp_note_counts_only_the_configured_adapters_circuit(
    backend: ConsoleBackend, console_sessions: sessionmaker[Session]
) -> None:
    """The reviewer's case: "The ERP is down (rest circuit open)" after an action on the
    ledger, because an earlier ``sync run`` with the REST adapter left its breaker open."""
    with console_sessions.begin() as session:
        session.add(
            AdapterHealth(
                adapter="rest", circuit_state="open", consecutive_failures=5,
                last_failure_at=NOW, opened_at=NOW - timedelta(minutes=3),
                latency_samples=[], updated_at=NOW,
            )
        )  # fmt: skip

    def configured(adapter: str) -> ConsoleBackend:
        return ConsoleBackend(
            console_sessions, backend.rules, operator="dana", role="supervisor",
            clock=lambda: NOW, settings=Settings(erp_adapter=adapter),
        )  # fmt: skip

    assert backend.settings.erp_adapter == "ledger" and backend.erp_circuits_open() == []
    assert configured("rest").erp_circuits_open() == ["rest"]
    assert configured("tryton").erp_circuits_open() == []  # never ran: nothing to say
    with console_sessions.begin() as session:
        ledger = session.get(AdapterHealth, "ledger")
        assert ledger is not None
        ledger.circuit_state = "half_open"
    assert backend.erp_circuits_open() == ["ledger"]


def test_a_row_whose_write_off_waits_says_so_in_its_state_cell(backend: ConsoleBackend) -> None:
    page = backend.queue_page("denial", limit=3)
    row = page.rows[0]
    assert row.pending_approval is None and row_cells(row, page, False)[-1].plain == "open"
    waiting = replace(row, pending_approval=63)
    assert row_cells(waiting, page, False)[-1].plain == "open · approval 63 pending"
    leased = replace(waiting, state="in_progress", assigned_to="[b]bob")
    cell = row_cells(leased, page, True)[-1]
    assert cell.plain == "in progress ([b]bob) · approval 63 pending"  # plain text, no markup


def test_a_seeded_request_reaches_the_queue_row(
    backend: ConsoleBackend, console_sessions: sessionmaker[Session]
) -> None:
    """``details.pending_approval`` read for the page's rows on each backend, only while the
    approval is open."""
    with console_sessions.begin() as session:
        (approval,) = open_work_items(session, [{
            "kind": "approval", "source_key": "write_off:999", "amount": Decimal("900.00"),
            "payer_id": "SMPAE", "payer_name": "ACME", "patient_control_number": "PCNWAIT",
            "trace_number": "TRNWAIT", "error": "over the limit", "error_signature": "",
        }], now=NOW)  # fmt: skip
        open_work_items(session, [{
            "kind": "denial", "source_key": "denial-wait", "amount": Decimal("900.00"),
            "payer_id": "SMPAE", "payer_name": "ACME", "patient_control_number": "PCNWAIT",
            "trace_number": "TRNWAIT", "error": "denied (CO-197)", "error_signature": "",
            "details": {"pending_approval": approval.id},
        }], now=NOW)  # fmt: skip
    rows = backend.queue_page("denial", QueueFilter.parse("claim:PCNWAIT")).rows
    assert [r.pending_approval for r in rows] == [approval.id]
    assert all(r.pending_approval is None for r in backend.queue_page("denial").rows
               if r.claim != "PCNWAIT")  # fmt: skip
