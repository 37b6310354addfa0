"""Rebuilding remittances from rows: equal to what the reader produced, keys included, in a
fixed number of queries; and the pending-posting anti-joins, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, event, insert, select
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import (
    ClaimPayment,
    RemittanceHeader,
    RemittanceTrailer,
)
from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.engine.keys import claim_payment_key
from claimsync_console.store import hydrate
from claimsync_console.store.models import ClaimPaymentRow, Remittance, SourceFile
from claimsync_console.store.models_engine import PaymentMatch
from claimsync_console.store.queries_engine import open_work_item, update_work_item
from claimsync_console.store.queries_outbox import insert_outbox_row
from claimsync_console.x12.document import read_document

SAMPLE_835 = Path(__file__).resolve().parents[2] / "sample_data" / "835"
# whole-claim denials, reversals, PLBs (interest, recoupment), line- and claim-level CAS
FILES = ("835_BCB_RPG_0002.x12", "835_UHC_RPG_0002.x12", "835_MCR_LCH_0002.x12",
         "835_AET_HOC_0001.x12")  # fmt: skip
NOW = datetime(2026, 3, 1, tzinfo=UTC)


Parsed = dict[tuple[str, int], tuple[RemittanceHeader, ClaimPayment | RemittanceTrailer]]


def parse() -> Parsed:
    """(file sha256, segment position) -> (header, CLP or trailer), straight from the files."""
    found: Parsed = {}
    for name in FILES:
        data = (SAMPLE_835 / name).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        for item in read_document(data, name):
            if isinstance(item, RemittanceHeader):
                header = item
            elif isinstance(item, ClaimPayment):
                found[(sha, item.segment_start)] = (header, item)
            elif isinstance(item, RemittanceTrailer):
                found[(sha, -header.segment_start)] = (header, item)
    return found


@pytest.fixture
def loaded(db_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    results = ingest_paths(db_sessions, [SAMPLE_835 / n for n in FILES], now=NOW)
    assert {r.status for r in results} == {"loaded"}
    return db_sessions


def payment_ids(session: Session) -> dict[tuple[str, int], tuple[int, int]]:
    """(file sha256, CLP position) -> (claim payment id, remittance id)."""
    rows = session.execute(
        select(SourceFile.sha256, ClaimPaymentRow.segment_start, ClaimPaymentRow.id,
               ClaimPaymentRow.remittance_id)
        .join(SourceFile, SourceFile.id == ClaimPaymentRow.source_file_id)
    )  # fmt: skip
    return {(sha, start): (cp_id, rem_id) for sha, start, cp_id, rem_id in rows}


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        seen.append(sql)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_hydrated_payments_are_what_the_reader_produced(loaded: sessionmaker[Session]) -> None:
    parsed = parse()
    with loaded() as session:
        ids = payment_ids(session)
        engine = session.get_bind()
        assert isinstance(engine, Engine)
        with statements(engine) as seen:
            payments = hydrate.load_claim_payments(session, [i for i, _ in ids.values()])
        headers = hydrate.load_remittance_headers(session, {r for _, r in ids.values()})
    assert len(seen) == 3  # payments, services, adjustments: one query each for the chunk
    assert len(payments) == len(ids) == sum(isinstance(v[1], ClaimPayment) for v in parsed.values())
    lines = 0
    for (sha, start), (cp_id, rem_id) in ids.items():
        header, expected = parsed[(sha, start)]
        assert isinstance(expected, ClaimPayment)
        assert payments[cp_id] == expected  # every field, CAS and services in file order
        assert headers[rem_id] == (header, sha)
        # so the idempotency key, which hashes position, sequence and money, survives too
        hydrated_key = claim_payment_key(sha, headers[rem_id][0], payments[cp_id])
        assert hydrated_key == claim_payment_key(sha, header, expected)
        lines += len(expected.services)
    assert lines > 50 and any(p.is_reversal for p in payments.values())


def test_provider_adjustments_and_single_lookups(loaded: sessionmaker[Session]) -> None:
    parsed = parse()
    trailers = {(sha, -pos): value for (sha, pos), value in parsed.items() if pos < 0}
    with loaded() as session:
        rows = session.execute(
            select(Remittance.id, SourceFile.sha256, Remittance.segment_start).join(
                SourceFile, SourceFile.id == Remittance.source_file_id
            )
        ).all()
        plbs = hydrate.load_provider_adjustments_for(session, [r.id for r in rows])
        with_plb = 0
        for rem_id, sha, start in rows:
            header, trailer = trailers[(sha, start)]
            assert isinstance(trailer, RemittanceTrailer)
            assert (
                hydrate.load_provider_adjustments(session, rem_id) == trailer.provider_adjustments
            )
            assert plbs.get(rem_id, ()) == trailer.provider_adjustments
            assert hydrate.load_remittance_header(session, rem_id) == (header, sha)
            with_plb += bool(trailer.provider_adjustments)
        assert with_plb == 2
        missing = max(r.id for r in rows) + 100
        assert hydrate.load_claim_payments(session, [missing]) == {}
        assert hydrate.load_provider_adjustments(session, missing) == ()
        with pytest.raises(hydrate.RowNotFoundError):
            hydrate.load_remittance_header(session, missing)


def test_pending_payments_leave_out_denials_posted_and_held_ones(
    loaded: sessionmaker[Session],
) -> None:
    parsed = parse()
    with loaded() as session, session.begin():
        ids = payment_ids(session)
        by_kind: dict[str, list[int]] = {"denial": [], "reversal": [], "other": []}
        for key, (cp_id, _) in ids.items():
            payment = parsed[key][1]
            assert isinstance(payment, ClaimPayment)
            kind = "reversal" if payment.is_reversal else "other"
            by_kind["denial" if payment.is_denial and not payment.paid else kind].append(cp_id)
        denial, (rev_a, rev_b) = by_kind["denial"][0], sorted(by_kind["reversal"])
        others = sorted(by_kind["other"])
        verdicts = [{"claim_payment_id": i, "status": "matched"} for i in [*others, denial]]
        verdicts.append(
            {"claim_payment_id": rev_a, "status": "reversal_linked", "reversed_payment_id": denial}
        )  # reverses a whole denial
        verdicts.append({"claim_payment_id": rev_b, "status": "reversal_linked",
                         "reversed_payment_id": others[0]})  # fmt: skip
        session.execute(
            insert(PaymentMatch),
            [{"claim_id": None, "method": None, "score": None, "reversed_payment_id": None,
              "work_item_id": None, "warnings": [], "matched_at": NOW, **v} for v in verdicts],
        )  # fmt: skip
        unmatched = others.pop()  # no verdict row at all is "not matched" too
        session.execute(delete(PaymentMatch).where(PaymentMatch.claim_payment_id == unmatched))
        pending = [cp for cp, _ in hydrate.pending_claim_payments(session, 0, 1000)]
        assert pending == sorted([*others, rev_b])

        posted, held, closed, denied, written_off = others[:5]
        insert_outbox_row(
            session,
            idempotency_key="k1",
            kind="payment",
            entry={},
            amount=Decimal(1),
            cash_amount=Decimal(1),
            now=NOW,
            claim_payment_id=posted,
        )
        insert_outbox_row(session, idempotency_key="k2", kind="write_off", entry={},
                          amount=Decimal(1), cash_amount=Decimal(0), now=NOW,
                          claim_payment_id=written_off)  # fmt: skip
        opened = {
            kind: open_work_item(
                session, kind=kind, source_key=f"s{cp_id}", amount=Decimal(1), now=NOW,
                claim_payment_id=cp_id,
            ).id
            for kind, cp_id in (("approval", held), ("mapping_error", closed), ("denial", denied))
        }  # fmt: skip
        # a closed item holds its payment back too: closing it was an analyst's decision
        ignored = opened["mapping_error"]
        update_work_item(session, ignored, expected_version=1, now=NOW, state="ignored")
        pending = [cp for cp, _ in hydrate.pending_claim_payments(session, 0, 1000)]
        assert pending == sorted({*others, rev_b} - {posted, held, closed})
        # keyset paging walks the same rows in pieces
        paged, after = [], 0
        while chunk := hydrate.pending_claim_payments(session, after, 2):
            paged += [cp for cp, _ in chunk]
            after = chunk[-1][0]
        assert paged == pending


def test_pending_plbs_until_posted_or_held(loaded: sessionmaker[Session]) -> None:
    with loaded() as session, session.begin():
        with_plb = hydrate.pending_plb_remittances(session, 0, 100)
        assert len(with_plb) == 2
        first, second = with_plb
        insert_outbox_row(session, idempotency_key="p1", kind="plb", entry={}, amount=Decimal(1),
                          cash_amount=Decimal(1), now=NOW, remittance_id=first)  # fmt: skip
        # an item about one of the check's payments does not hold its PLB back
        cp_id = session.scalar(
            select(ClaimPaymentRow.id).where(ClaimPaymentRow.remittance_id == second).limit(1)
        )
        open_work_item(session, kind="mapping_error", source_key="c", amount=Decimal(1), now=NOW,
                       remittance_id=second, claim_payment_id=cp_id)  # fmt: skip
        assert hydrate.pending_plb_remittances(session, 0, 100) == [second]
        open_work_item(session, kind="mapping_error", source_key="plb:x", amount=Decimal(1),
                       now=NOW, remittance_id=second)  # fmt: skip
        assert hydrate.pending_plb_remittances(session, 0, 100) == []
