"""A queue's free-text filter through the search index (migration 0006), on SQLite and PostgreSQL.

The semantics checked here are written in ``store/queue_search.py``: the text, as one string,
contained (ASCII case ignored) in the claim number, trace number, payer name, payer id or
error. Every answer is compared with that rule applied in Python to the whole queue, along each
path the SQLite side can take (rare text from the index, common text along the queue's order,
common text from the index when the order runs dry).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.store import queries_queue as qq
from claimsync_console.store.db import make_engine, session_factory, upgrade_to_head
from claimsync_console.store.models_engine import WorkItem
from claimsync_console.store.queries_engine import OPEN_STATES, open_work_item, open_work_items
from claimsync_console.store.queries_queue import QueueRow, QueueWhere
from claimsync_console.store.queue_search import TEXT_COLUMNS, pg_contains

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
PAYERS = (("SMPAE", "ACME HEALTH INSURANCE"), ("SMPBC", "BLUE SAMPLE CROSS SHIELD"))
#: (cap, window) forcing each path: rare text from the index; common text found along the
#: queue's order; common text whose window runs dry, taken from the index after all.
PATHS = {"rare": (5_000, 5_000), "window": (1, 5_000), "index-after-window": (1, 1)}


def _item(n: int) -> dict[str, object]:
    kind = ("dead_letter", "denial", "unmatched_remittance")[n % 3]
    payer_id, payer_name = PAYERS[n % 2]
    error = {
        "dead_letter": f"ERP said 422: rule {n % 7} rejected the entry",
        "denial": f"denied (CO-{n % 5 + 1}97)",
        "unmatched_remittance": "no claim with this patient control number",
    }[kind]
    if n == 33:
        error = "ERP said 400: memo 100% off_by one"
    return {
        "kind": kind, "source_key": f"s-{n}", "amount": Decimal(10 + n * 37 % 500),
        "payer_id": payer_id, "payer_name": payer_name,
        "patient_control_number": f"PCN{n:06d}X", "trace_number": f"TRN{n // 4:05d}",
        "error": error, "error_signature": f"sig-{n % 4}",
    }  # fmt: skip


def _seed(sessions: sessionmaker[Session], count: int = 90) -> None:
    with sessions.begin() as session:
        for n in range(count):
            open_work_items(session, [_item(n)], now=NOW - timedelta(hours=n * 7 % 50, minutes=n))


@pytest.fixture
def sessions(migrated_engine: Engine) -> sessionmaker[Session]:
    factory = session_factory(migrated_engine)
    _seed(factory)
    return factory


@pytest.fixture(params=list(PATHS))
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    cap, window = PATHS[request.param]
    monkeypatch.setattr(qq, "CANDIDATE_CAP", cap)
    monkeypatch.setattr(qq, "TEXT_WINDOW", window)
    yield request.param


def _where(typed: str | None, kind: str = "dead_letter") -> QueueWhere:
    return QueueWhere(kind=kind, states=OPEN_STATES, text=typed)


def _walk(session: Session, where: QueueWhere, sort: str, descending: bool) -> list[int]:
    """Every id through keyset pages of 4."""
    seen: list[int] = []
    after = None
    while True:
        rows = qq.queue_rows(session, where, sort=sort, descending=descending, after=after, limit=4)
        seen.extend(r.id for r in rows)
        if len(rows) < 4:
            return seen
        after = rows[-1].key(sort)


def _expected(session: Session, where: QueueWhere, sort: str, descending: bool) -> list[int]:
    """The rule applied in Python to the whole queue, in the same order."""
    everything = qq.queue_rows(
        session, _where(None, where.kind), sort=sort, descending=descending, limit=10_000
    )
    needle = (where.text or "").lower()
    return [r.id for r in everything if any(needle in f.lower() for f in _fields(session, r))]


def _fields(session: Session, row: QueueRow) -> list[str]:
    item = session.get(WorkItem, row.id)
    assert item is not None
    return [getattr(item, name) for name in TEXT_COLUMNS]


def _ids(session: Session, typed: str, kind: str = "dead_letter") -> list[int]:
    return [r.id for r in qq.queue_rows(session, _where(typed, kind), limit=500)]


def _claims(session: Session, typed: str, kind: str = "dead_letter") -> list[str]:
    return sorted(r.claim for r in qq.queue_rows(session, _where(typed, kind), limit=500))


def test_pages_hold_exactly_the_matches_in_order(
    sessions: sessionmaker[Session], path: str
) -> None:
    with sessions() as session:
        for typed in ("rule 3", "smpbc", "ERP said", "TRN0001", "pcn00004", "0004"):
            where = _where(typed)
            for sort in qq.SORT_KEYS:
                for descending in (False, True):
                    expected = _expected(session, where, sort, descending)
                    assert expected, typed
                    assert _walk(session, where, sort, descending) == expected, (typed, sort)
            assert qq.capped_count(session, where, 1_000) == len(expected)


def test_a_part_of_a_claim_number_finds_it_anywhere_in_any_case(
    sessions: sessionmaker[Session], path: str
) -> None:
    with sessions() as session:
        assert _claims(session, "PCN000042X") == ["PCN000042X"]  # the whole number
        assert _claims(session, "pcn000042") == ["PCN000042X"]  # its beginning, any case
        assert _claims(session, "00042x") == ["PCN000042X"]  # its middle and end


def test_a_word_inside_an_error_or_a_payer_name_is_found(
    sessions: sessionmaker[Session], path: str
) -> None:
    with sessions() as session:
        assert len(_ids(session, "ejected the")) == 29  # every dead letter but n=33
        assert len(_ids(session, "sample cross")) == 15  # BLUE SAMPLE CROSS SHIELD's half
        assert _claims(session, "(CO-297)", kind="denial") == [
            f"PCN{n:06d}X" for n in range(90) if n % 3 == 1 and n % 5 == 1
        ]


def test_no_match_is_empty_and_counts_zero(sessions: sessionmaker[Session], path: str) -> None:
    with sessions() as session:
        for typed in ("nothing like this", "PCN000042Y", "rule 9", "zq"):
            assert _ids(session, typed) == []
            assert qq.capped_count(session, _where(typed), 1_000) == 0


def test_a_match_never_spans_two_fields(sessions: sessionmaker[Session]) -> None:
    """ "SMPAE ACME" would be a substring if payer id and name were one string."""
    with sessions() as session:
        assert _ids(session, "SMPAE ACME") == []
        assert _ids(session, "X TRN") == []  # claim number, then trace number
        assert _ids(session, "dead_letter") == []  # the kind narrows lookups, is never matched


def test_wildcards_and_quotes_are_plain_characters(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert _claims(session, "100% off_by") == ["PCN000033X"]
        assert _ids(session, "r%d") == [] and _ids(session, "rule_3") == []
        assert _ids(session, 'memo "100') == [] and _ids(session, '"') == []


def test_text_shorter_than_a_trigram_still_filters(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert _claims(session, "9x") == [f"PCN{n:06d}X" for n in (9, 39, 69)]
        assert _claims(session, "2X", kind="denial") == ["PCN000022X", "PCN000052X", "PCN000082X"]


def test_changed_text_is_found_by_the_new_text_only(sessions: sessionmaker[Session]) -> None:
    """A dead letter that fails again reopens with the ERP's new error; the index follows."""
    with sessions.begin() as session:
        first = open_work_item(session, now=NOW, **_failed("ERP said 503: ledger asleep"))
        session.execute(
            update(WorkItem)
            .where(WorkItem.id == first.id)
            .values(state="resolved", version=WorkItem.version + 1)
        )
    with sessions() as session:
        assert _ids(session, "ledger asleep") == []  # resolved: not in the queue
    with sessions.begin() as session:
        again = open_work_item(
            session, now=NOW, reopen=True, **_failed("ERP said 409: duplicate memo")
        )
        assert again.id == first.id and not again.created
    with sessions() as session:
        assert _ids(session, "duplicate memo") == [first.id]
        assert _ids(session, "ledger asleep") == []
    with sessions.begin() as session:
        session.execute(delete(WorkItem).where(WorkItem.id == first.id))
    with sessions() as session:
        assert _ids(session, "duplicate memo") == []
        _check_fts(session)


def _failed(error: str) -> dict[str, Any]:
    return {
        "kind": "dead_letter", "source_key": "outbox-77", "amount": Decimal("12.50"),
        "payer_id": "SMPZZ", "payer_name": "ZED MUTUAL", "patient_control_number": "PCNZ77",
        "error": error, "error_signature": "sig-z",
    }  # fmt: skip


def _check_fts(session: Session) -> None:
    """On SQLite, FTS5's own check that the index agrees with work_items (raises if not)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("INSERT INTO work_items_search(work_items_search, rank) "
                             "VALUES ('integrity-check', 1)"))  # fmt: skip


@pytest.fixture
def engine_at_0005(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade_to_head(engine, "0005")
    yield engine
    engine.dispose()


def test_the_migration_indexes_the_items_already_there(engine_at_0005: Engine) -> None:
    sessions = session_factory(engine_at_0005)
    _seed(sessions, 30)
    upgrade_to_head(engine_at_0005)
    with sessions() as session:
        _check_fts(session)
        assert _claims(session, "000027") == ["PCN000027X"]
        assert len(_ids(session, "rule")) == 10
    with sessions.begin() as session:
        open_work_items(session, [_item(31)], now=NOW)  # written after: indexed by the trigger
    with sessions() as session:
        assert _claims(session, "pcn000031", kind="denial") == ["PCN000031X"]


def test_postgres_can_answer_free_text_from_the_trigram_index(
    sessions: sessionmaker[Session],
) -> None:
    """The filter's expression is the index's, so the planner may use it (forced here: on a
    small table it rightly prefers reading the table)."""
    with sessions() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("the trigram index is PostgreSQL's; SQLite's FTS5 is used explicitly")
        session.execute(text("SET LOCAL enable_seqscan = off"))
        query = (
            select(WorkItem.id)
            .where(pg_contains("PCN000042"))
            .compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        )
        plan = "\n".join(r[0] for r in session.execute(text(f"EXPLAIN {query}")))
        assert "ix_work_items_search_trgm" in plan
