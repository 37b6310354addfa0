"""Matching on SQLite and PostgreSQL against the sample generator's manifest, plus the pure
rules (scores, ties, versions, reversals, denials) without a database.

The generated set is ingested once per backend; each test runs in one transaction that is
rolled back, which works because matching never commits."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine import match_scoring as ms
from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.engine.matching import MatchSummary, match_payments
from claimsync_console.engine.samplegen import generate
from claimsync_console.engine.workitems import normalise_payer_id
from claimsync_console.store import queries_engine as qe
from claimsync_console.store.db import session_factory
from claimsync_console.store.models import ClaimPaymentRow, ClaimRow, Remittance
from claimsync_console.store.models_engine import ClaimAck, PaymentMatch, WorkItem
from tests.store.test_engine_tables import BACKENDS, migrated_once

T0 = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
T1 = datetime(2026, 2, 3, 8, 0, tzinfo=UTC)

# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("sample")
    generate(claims=300, seed=7, out_dir=out)
    return out, json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sample: tuple[Path, dict[str, Any]],
) -> Iterator[sessionmaker[Session]]:
    out, _ = sample
    engine: Engine
    for engine in migrated_once(request.param, tmp_path_factory.mktemp("matching")):
        sessions = session_factory(engine)
        folders = [out / "837", out / "277ca", out / "835"]
        results = ingest_paths(sessions, folders, check_resent=False)
        assert {r.status for r in results} == {"loaded"}
        yield sessions


@pytest.fixture
def session(loaded: sessionmaker[Session]) -> Iterator[Session]:
    with loaded() as s:
        s.begin()
        try:
            yield s
        finally:
            s.rollback()


def _payments(session: Session) -> list[Any]:
    return list(
        session.execute(
            select(ClaimPaymentRow, Remittance.payer_identifier)
            .join(Remittance, Remittance.id == ClaimPaymentRow.remittance_id)
            .order_by(ClaimPaymentRow.id)
        ).all()
    )


def _matches(session: Session) -> dict[int, PaymentMatch]:
    return {m.claim_payment_id: m for m in session.scalars(select(PaymentMatch))}


def _items(session: Session, kind: str) -> list[WorkItem]:
    return list(session.scalars(select(WorkItem).where(WorkItem.kind == kind)))


def _copy_row(session: Session, model: Any, row_id: int, **changes: Any) -> int:
    table: Table = model.__table__
    row = dict(session.execute(select(table).where(table.c.id == row_id)).mappings().one())
    del row["id"]
    row.update(changes)
    return int(session.execute(insert(table).values(**row).returning(table.c.id)).scalar_one())


# -- against the manifest ----------------------------------------------------------------------


def test_matching_follows_the_manifest(
    session: Session, sample: tuple[Path, dict[str, Any]]
) -> None:
    _, manifest = sample
    problems = manifest["problem_pcns"]
    unknown = set(problems["unknown_pcn"])
    summary = match_payments(session, now=T0)

    payments = _payments(session)
    matches = _matches(session)
    claims = {c.id: c for c in session.scalars(select(ClaimRow))}
    assert len(matches) == len(payments) == manifest["counts"]["claim_payments"]
    by_id = {p.id: p for p, _ in payments}
    reversals = 0
    for payment, payer in payments:
        match = matches[payment.id]
        if payment.status_code == "22":
            reversals += 1
            original = by_id[match.reversed_payment_id]
            assert match.status == "reversal_linked"
            assert original.payer_claim_control_number == payment.payer_claim_control_number
            assert original.status_code != "22" and original.charge == -payment.charge
            assert match.claim_id == matches[original.id].claim_id is not None
        elif payment.patient_control_number in unknown:
            assert (match.status, match.claim_id) == ("unmatched", None)
        else:
            assert match.claim_id is not None
            claim = claims[match.claim_id]
            assert match.status == "matched" and match.method == "pcn_payer"
            assert claim.patient_control_number == payment.patient_control_number
            assert normalise_payer_id(claim.payer_identifier) == normalise_payer_id(payer)
            # originals pay the frequency-1 version, corrections the replacement (7)
            assert claim.frequency_code == payment.frequency_code
    assert reversals == manifest["counts"]["reversals"] == summary.reversals_linked

    items = _items(session, "unmatched_remittance")
    assert sorted(i.patient_control_number for i in items) == sorted(unknown)
    for item in items:
        payment = by_id[item.claim_payment_id]
        assert matches[payment.id].work_item_id == item.id
        assert item.amount == payment.paid and item.state == "open"
        assert isinstance(item.details["candidates"], list)
        assert len(item.details["candidates"]) <= 5
        scores = [c["score"] for c in item.details["candidates"]]
        assert scores == sorted(scores, reverse=True)

    warned = {
        by_id[m.claim_payment_id].patient_control_number
        for m in matches.values()
        if any(w["code"] == "charge-mismatch" for w in m.warnings)
    }
    assert warned == set(problems["amount_mismatch"])

    denials = _items(session, "denial")
    denied_payments = {p.id for p, _ in payments if p.status_code == "4"}
    assert denied_payments <= {d.claim_payment_id for d in denials}
    assert len(denials) >= manifest["counts"]["outcome_denied"]
    for denial in denials:
        payment = by_id[denial.claim_payment_id]
        assert payment.status_code == "4" or payment.paid == 0
        assert denial.amount == payment.charge and denial.claim_id is not None

    rejected = _items(session, "rejected_claim")
    assert sorted(r.patient_control_number for r in rejected) == sorted(problems["rejected_277ca"])
    states = qe.claim_ack_states(session, [r.claim_id for r in rejected if r.claim_id])
    assert len(states) == len(rejected) and set(states.values()) == {"rejected"}
    assert summary.rejections_opened == len(rejected)

    before = qe.queue_totals(session)
    assert match_payments(session, now=T1) == MatchSummary()
    assert qe.queue_totals(session) == before
    assert len(_matches(session)) == len(matches)


def test_claims_loaded_after_their_payments_resolve_on_a_later_run(
    session: Session, sample: tuple[Path, dict[str, Any]]
) -> None:
    """As if the 835s came first: hide every claim's payer, match, restore, match again."""
    unknown = set(sample[1]["problem_pcns"]["unknown_pcn"])
    payers = session.execute(select(ClaimRow.id, ClaimRow.payer_identifier)).all()
    session.execute(update(ClaimRow).values(payer_identifier="HIDDEN"))
    first = match_payments(session, now=T0)
    originals = [p for p, _ in _payments(session) if p.status_code != "22"]
    assert first.unmatched == len(originals) and first.matched == 0
    assert first.reversals_linked == sample[1]["counts"]["reversals"]
    taken = _items(session, "unmatched_remittance")[0]
    qe.update_work_item(session, taken.id, expected_version=1, now=T0, state="in_progress")

    session.execute(update(ClaimRow), [{"id": i, "payer_identifier": payer} for i, payer in payers])
    second = match_payments(session, now=T1)
    assert second.resolved_on_retry == len(originals) - len(unknown) - 1
    matches = _matches(session)
    resolved = [i for i in _items(session, "unmatched_remittance") if i.state == "resolved"]
    assert len(resolved) == second.resolved_on_retry
    for item in resolved:
        assert item.claim_payment_id is not None
        match = matches[item.claim_payment_id]
        assert match.status == "matched"
        assert item.details["resolution"]["claim_id"] == match.claim_id
        assert item.resolved_at == T1 and item.version == 2
    assert taken.claim_payment_id is not None
    assert matches[taken.claim_payment_id].status == "unmatched"  # the analyst's, untouched
    for match in matches.values():
        if match.status == "reversal_linked":
            assert match.reversed_payment_id is not None
            assert match.claim_id == matches[match.reversed_payment_id].claim_id is not None
    assert second.denials_opened == len(_items(session, "denial")) > 0
    orphan_acks = session.scalar(
        select(func.count()).select_from(ClaimAck).where(ClaimAck.claim_id.is_(None))
    )
    assert orphan_acks == 0
    assert all(r.claim_id is not None for r in _items(session, "rejected_claim"))


# -- single scenarios, made by editing the loaded rows -----------------------------------------


def _plain_payment(session: Session) -> ClaimPaymentRow:
    """A paid, non-reversal payment whose claim has a single version and a 277CA ICN."""
    single = (
        select(ClaimRow.patient_control_number)
        .group_by(ClaimRow.patient_control_number)
        .having(func.count() == 1)
    )
    return session.scalars(
        select(ClaimPaymentRow)
        .where(
            ClaimPaymentRow.status_code == "1",
            ClaimPaymentRow.paid > 0,
            ClaimPaymentRow.patient_control_number.in_(single),
        )
        .order_by(ClaimPaymentRow.id)
        .limit(1)
    ).one()


def test_a_changed_clp01_matches_by_payer_claim_control_number(session: Session) -> None:
    payment = _plain_payment(session)
    pcn = payment.patient_control_number
    session.execute(
        update(ClaimPaymentRow)
        .where(ClaimPaymentRow.id == payment.id)
        .values(patient_control_number="ZZ-NOT-OURS")
    )
    match_payments(session, now=T0)
    match = qe.get_payment_match(session, payment.id)
    assert match is not None and (match.status, match.method) == ("matched", "payer_ccn")
    claim = session.get(ClaimRow, match.claim_id)
    assert claim is not None and claim.patient_control_number == pcn


def test_two_equally_good_claims_give_candidates_not_a_guess(session: Session) -> None:
    payment = _plain_payment(session)
    claim_id = session.scalar(
        select(ClaimRow.id).where(ClaimRow.patient_control_number == payment.patient_control_number)
    )
    assert claim_id is not None
    twin = _copy_row(session, ClaimRow, claim_id, payer_identifier="SMPZZ")
    session.execute(  # an 835 that names no payer id
        update(Remittance)
        .where(Remittance.id == payment.remittance_id)
        .values(payer_identifier="", payer_id_qualifier="")
    )
    match_payments(session, now=T0)
    match = qe.get_payment_match(session, payment.id)
    assert match is not None and (match.status, match.claim_id) == ("ambiguous", None)
    item = session.get(WorkItem, match.work_item_id)
    assert item is not None and item.kind == "unmatched_remittance"
    candidates = item.details["candidates"]
    assert {c["claim_id"] for c in candidates} == {claim_id, twin}
    assert candidates[0]["score"] == candidates[1]["score"]
    others = session.scalars(
        select(PaymentMatch)
        .join(ClaimPaymentRow, ClaimPaymentRow.id == PaymentMatch.claim_payment_id)
        .where(
            ClaimPaymentRow.remittance_id == payment.remittance_id, PaymentMatch.status == "matched"
        )
    ).all()
    assert others and all(
        any(w["code"] == "payer-not-identified" for w in m.warnings) for m in others
    )


def test_a_split_claim_accumulates_its_payments(session: Session) -> None:
    payment = _plain_payment(session)
    half = (payment.paid / 2).quantize(Decimal("0.01"))
    session.execute(
        update(ClaimPaymentRow).where(ClaimPaymentRow.id == payment.id).values(paid=half)
    )
    second = _copy_row(session, ClaimPaymentRow, payment.id, sequence=999, paid=payment.paid - half)
    match_payments(session, now=T0)
    first_match, second_match = (qe.get_payment_match(session, i) for i in (payment.id, second))
    assert first_match is not None and second_match is not None
    assert first_match.status == second_match.status == "matched"
    claim_id = first_match.claim_id
    assert claim_id is not None and second_match.claim_id == claim_id
    assert qe.claim_paid_totals(session, [claim_id]) == {claim_id: payment.paid}
    assert len(qe.payment_matches_for_claim(session, claim_id)) == 2


def test_a_reversal_without_its_original_is_a_work_item(session: Session) -> None:
    reversal = session.scalars(
        select(ClaimPaymentRow).where(ClaimPaymentRow.status_code == "22").limit(1)
    ).one()
    session.execute(
        update(ClaimPaymentRow)
        .where(ClaimPaymentRow.id == reversal.id)
        .values(payer_claim_control_number="NEVER-SEEN")
    )
    summary = match_payments(session, now=T0)
    assert summary.reversal_orphans == 1
    match = qe.get_payment_match(session, reversal.id)
    assert match is not None and match.status == "reversal_orphan"
    item = session.get(WorkItem, match.work_item_id)
    assert item is not None and item.kind == "unmatched_remittance"
    assert item.details["reason"] == "reversal without original"
    assert item.amount == reversal.paid < 0


def test_matching_one_file_leaves_the_others(session: Session) -> None:
    remittance = session.scalars(select(Remittance).order_by(Remittance.id).limit(1)).one()
    summary = match_payments(session, file_ids=[remittance.source_file_id], now=T0)
    counted = Counter(m.claim_payment_id for m in _matches(session).values())
    in_file = session.scalars(
        select(ClaimPaymentRow.id).where(
            ClaimPaymentRow.source_file_id == remittance.source_file_id
        )
    ).all()
    assert set(counted) == set(in_file)
    assert summary.matched + summary.unmatched + summary.reversals_linked == len(in_file)


# -- the pure rules ----------------------------------------------------------------------------


def _claim(
    claim_id: int, pcn: str = "NMC0000001", payer: str = "SMPMB", **kw: Any
) -> ms.ClaimFacts:
    values: dict[str, Any] = {
        "frequency_code": "1", "replaces_ccn": "", "billed_amount": Decimal("100.00"),
        "date_from": date(2026, 1, 2), "date_to": date(2026, 1, 2),
        "member_ids": frozenset({"M1"}), "names": frozenset({("DOE", "JO")}),
    }  # fmt: skip
    values.update(kw)
    return ms.ClaimFacts(claim_id, pcn, payer, **values)


def _payment(pcn: str = "NMC0000001", payer: str = "SMPMB", **kw: Any) -> ms.PaymentFacts:
    values: dict[str, Any] = {
        "status_code": "1", "charge": Decimal("100.00"), "paid": Decimal("70.00"),
        "payer_claim_control_number": "ICN1", "date_from": date(2026, 1, 2),
        "date_to": date(2026, 1, 2), "member_ids": frozenset({"M1"}),
        "names": frozenset({("DOE", "JO")}), "payment_date": date(2026, 1, 20),
    }  # fmt: skip
    values.update(kw)
    return ms.PaymentFacts(1, 1, pcn, payer_id=payer, **values)


def test_scores_add_up_from_each_kind_of_evidence() -> None:
    assert ms.score_candidate(_payment(), _claim(1)).score == 100
    weak = ms.score_candidate(
        _payment("XYZ999", member_ids=frozenset(), names=frozenset()),
        _claim(2, billed_amount=Decimal("5.00"), date_from=date(2026, 3, 1),
               date_to=date(2026, 3, 1)),
    )  # fmt: skip
    assert weak.score == 5 + round(ms.SequenceMatcher(None, "XYZ999", "NMC0000001").ratio() * 35)
    near = ms.score_candidate(_payment(date_from=date(2026, 1, 4), date_to=None), _claim(3))
    assert near.score == 95 and "service dates 2 days apart" in near.reasons


def test_a_tie_at_the_top_is_no_match() -> None:
    a, b = ms.Scored(_claim(1), 80, ()), ms.Scored(_claim(2), 80, ())
    assert ms.unique_best([a, b]) is None
    assert ms.unique_best([a, replace(b, score=79)]) is a
    assert ms.unique_best([]) is None


def test_same_clp01_under_two_payers_without_a_payer_id_is_ambiguous() -> None:
    claims = [_claim(1, payer="SMPMB"), _claim(2, payer="SMPAE")]
    decision = ms.decide_payment(_payment(payer=""), {"NMC0000001": claims}, {})
    assert (decision.status, decision.claim_id) == ("ambiguous", None)
    assert [c["claim_id"] for c in decision.candidates] == [2, 1]
    assert decision.candidates[0]["score"] == decision.candidates[1]["score"]
    known = ms.decide_payment(_payment(payer="SMPAE"), {"NMC0000001": claims}, {})
    assert (known.status, known.claim_id, known.method) == ("matched", 2, "pcn_payer")


def test_amount_mismatch_still_matches_with_a_warning() -> None:
    decision = ms.decide_payment(
        _payment(charge=Decimal("120.00"), date_from=date(2026, 2, 1), date_to=None),
        {"NMC0000001": [_claim(1)]},
        {},
    )
    assert decision.status == "matched"
    assert [w["code"] for w in decision.warnings] == ["charge-mismatch", "service-dates-differ"]


def test_clp07_finds_the_claim_when_clp01_does_not() -> None:
    decision = ms.decide_payment(
        _payment("TYPO"), {"NMC0000001": [_claim(1)]}, {"ICN1": {("NMC0000001", "SMPMB")}}
    )
    assert (decision.status, decision.claim_id, decision.method) == ("matched", 1, "payer_ccn")
    other_payer = ms.decide_payment(
        _payment("TYPO"), {"NMC0000001": [_claim(1)]}, {"ICN1": {("NMC0000001", "SMPAE")}}
    )
    assert other_payer.status == "unmatched"


def test_pick_version_follows_replacements_and_voids() -> None:
    original, replacement = _claim(1), _claim(2, frequency_code="7", replaces_ccn="ICN1")
    assert ms.pick_version([replacement, original], "ICN1") == (original, [])
    assert ms.pick_version([original, replacement], "ICN2") == (replacement, [])
    void = _claim(3, frequency_code="8", replaces_ccn="ICN2")
    assert ms.pick_version([original, replacement, void], "ICN9") == (replacement, [])
    only_void, warnings = ms.pick_version([void], "")
    assert only_void is void and warnings[0]["code"] == "claim-voided"


def _original(payment_id: int, **kw: Any) -> ms.OriginalFacts:
    values: dict[str, Any] = {
        "payer_claim_control_number": "ICN1", "payer_id": "SMPMB",
        "payment_date": date(2026, 1, 10), "charge": Decimal("100.00"),
        "paid": Decimal("70.00"), "claim_id": 7,
    }  # fmt: skip
    values.update(kw)
    return ms.OriginalFacts(payment_id, **values)


def test_a_reversal_links_to_the_payment_it_mirrors() -> None:
    reversal = replace(
        _payment(status_code="22", charge=Decimal("-100.00"), paid=Decimal("-70.00")),
        claim_payment_id=99,
    )
    mirror, other = _original(10), _original(11, paid=Decimal("75.00"))
    later = _original(12, payment_date=date(2026, 2, 1))
    decision = ms.decide_reversal(reversal, [other, mirror, later], set())
    assert (decision.status, decision.reversed_payment_id, decision.claim_id) == (
        "reversal_linked", 10, 7,
    )  # fmt: skip
    taken = ms.decide_reversal(reversal, [other, mirror, later], {10})
    assert (
        taken.reversed_payment_id == 11 and taken.warnings[0]["code"] == "reversal-amounts-differ"
    )
    orphan = ms.decide_reversal(reversal, [later], set())
    assert (orphan.status, orphan.reason) == ("reversal_orphan", "reversal without original")


def test_denials_are_clp02_4_or_nothing_paid_for_a_denial_reason() -> None:
    zero = Decimal("0.00")
    assert ms.denial_codes("4", zero, [("CO", "50"), ("PR", "1")]) == ["CO-50"]
    assert ms.denial_codes("1", zero, [("CO", "197")]) == ["CO-197"]
    assert ms.denial_codes("1", zero, [("PR", "1")]) is None  # the deductible took it all
    assert ms.denial_codes("1", Decimal("5.00"), [("CO", "50")]) is None  # partly paid


def test_statement_dates_come_from_dtm_232_and_233() -> None:
    dates = [
        {"qualifier": "232", "value": "2026-01-02"},
        {"qualifier": "233", "value": "2026-01-05"},
    ]
    assert ms.statement_dates(dates) == (date(2026, 1, 2), date(2026, 1, 5))
    assert ms.statement_dates([{"qualifier": "232", "value": "2026-01-02"}]) == (
        date(2026, 1, 2), date(2026, 1, 2),
    )  # fmt: skip
    assert ms.statement_dates([]) == (None, None)


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "0001-01-02"])
def test_a_date_at_the_end_of_the_calendar_does_not_stop_matching(
    session: Session, day: str
) -> None:
    """An unknown claim number sends the payment to the candidate search, whose ±3-day window
    around 9999-12-31 overflowed and failed every payment's matching on every run."""
    plain = _plain_payment(session)
    poison = _copy_row(
        session,
        ClaimPaymentRow,
        plain.id,
        patient_control_number="NO-SUCH-CLAIM",
        payer_claim_control_number="NO-SUCH-ICN",
        dates=[{"qualifier": "232", "value": day, "end": None}],
    )
    summary = match_payments(session, now=T0)
    assert summary.matched > 0  # the other payments went on
    match = qe.get_payment_match(session, poison)
    assert match is not None and match.status != "matched"


def test_a_bug_on_one_payment_sends_it_to_a_person_and_the_rest_match(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injected into the candidate search for one payment only."""
    from claimsync_console.engine.match_lookup import Lookup

    plain = _plain_payment(session)
    poison = _copy_row(
        session, ClaimPaymentRow, plain.id,
        patient_control_number="NO-SUCH-CLAIM", payer_claim_control_number="NO-SUCH-ICN",
    )  # fmt: skip
    real_pool = Lookup.candidate_pool

    def failing_for_one(self: Lookup, payment: ms.PaymentFacts) -> Any:
        if payment.claim_payment_id == poison:
            raise ValueError("a bug")
        return real_pool(self, payment)

    monkeypatch.setattr(Lookup, "candidate_pool", failing_for_one)
    summary = match_payments(session, now=T0)
    assert summary.matched > 0
    match = qe.get_payment_match(session, poison)
    assert match is not None and match.status == "unmatched"
    item = session.get(WorkItem, match.work_item_id)
    assert item is not None and item.kind == "unmatched_remittance"
    assert item.details["reason"] == "automatic matching failed (ValueError): match it by hand"
