"""Ingest against real databases (SQLite and PostgreSQL) with real corpus files.

Expected figures were read off the files themselves (CLP04s, CLM02s, SV1/SV2 and CAS counts)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine.ingest import IngestPathError, ingest_paths, sniff_interchange
from claimsync_console.store import queries
from claimsync_console.store.models import (
    AdjustmentRow,
    ClaimPaymentRow,
    ClaimRow,
    ClaimStatusRow,
    Remittance,
    SourceFile,
)

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "x12-corpus"
MANAGED_CARE_835 = (
    CORPUS / "LinuxForHealth__x12/src__tests__resources__835_005010X221A1__managed-care.835"
)
COMMERCIAL_837P = (
    CORPUS / "albmarin__badX12/tests__files__edi__X222-commercial-health-insurance.edi"
)
TWO_CLAIMS_837I = (
    CORPUS
    / "LinuxForHealth__x12/src__tests__resources__837_005010X223A3__two-claims-single-provider.837i"
)
ACCEPTED_277CA = (
    CORPUS / "imsweb__x12-parser/src__test__resources__277_5010__x12_277CA_accepted.txt"
)
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.skipif(not MANAGED_CARE_835.exists(), reason="x12 corpus not present")

Sessions = sessionmaker[Session]


def counts(sessions: Sessions) -> dict[str, int]:
    with sessions() as session:
        return queries.table_counts(session)


def copy(source: Path, folder: Path, name: str | None = None) -> Path:
    target = folder / (name or source.name)
    shutil.copyfile(source, target)
    return target


def edited(source: Path, folder: Path, name: str, old: bytes, new: bytes) -> Path:
    data = source.read_bytes()
    assert old in data
    target = folder / name
    target.write_bytes(data.replace(old, new, 1))
    return target


def test_loads_835_837_and_277ca_with_the_files_totals(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    results = ingest_paths(
        db_sessions, [MANAGED_CARE_835, COMMERCIAL_837P, ACCEPTED_277CA], now=NOW
    )
    remit, claim, status = (r.to_json() for r in results)

    assert remit["status"] == "loaded" and remit["kind"] == "835"
    assert remit["claim_payments"] == 2
    assert remit["paid_total"] == "945.00"  # CLP04 450.00 + 495.00, and BPR02 is 945.00
    assert claim["status"] == "loaded" and claim["kind"] == "837P"
    assert (claim["claims"], claim["claim_payments"], claim["paid_total"]) == (1, 0, "0.00")
    assert status["status"] == "loaded" and status["kind"] == "277CA"
    assert status["claim_statuses"] == 1
    assert all(
        set(f) >= {"severity", "segment_index", "segment_id", "message"}
        for r in (remit, claim, status)
        for f in r["findings"]
    )

    table = counts(db_sessions)
    assert table["file_blobs"] == table["source_files"] == 3
    assert table["remittances"] == 1
    assert table["service_payments"] == 2
    assert table["adjustments"] == 5  # 2 claim-level CAS + 3 line-level CAS triplets
    assert table["claims"] == 1
    assert table["service_lines"] == 4  # four SV1 lines
    with db_sessions() as session:
        remittance = session.scalars(select(Remittance)).one()
        assert remittance.trace_number == "7170066655"
        assert remittance.payment_amount == Decimal("945.00")
        assert remittance.paid_total == Decimal("945.00")
        assert remittance.interchange_control_number == "000000907"
        payments = session.scalars(select(ClaimPaymentRow).order_by(ClaimPaymentRow.id)).all()
        assert [p.patient_control_number for p in payments] == ["5554555444", "8765432112"]
        assert [p.sequence for p in payments] == [1, 2]
        line_level = session.scalars(
            select(AdjustmentRow).where(AdjustmentRow.service_payment_id.is_not(None))
        ).all()
        assert sorted(a.amount for a in line_level) == [
            Decimal("50.00"),
            Decimal("300.00"),
            Decimal("600.00"),
        ]
        claim_row = session.scalars(select(ClaimRow)).one()
        assert claim_row.billed_amount == Decimal("100.00")
        assert claim_row.patient_control_number == "26463774"
        status_row = session.scalars(select(ClaimStatusRow)).one()
        assert (status_row.patient_control_number, status_row.status) == ("5781", "accepted")
        source = session.scalars(select(SourceFile).where(SourceFile.kind == "835")).one()
        assert source.received_at == NOW and source.loaded_at == NOW
        assert queries.get_blob(session, source.sha256) == MANAGED_CARE_835.read_bytes()


def test_837i_totals(db_sessions: Sessions) -> None:
    (result,) = ingest_paths(db_sessions, [TWO_CLAIMS_837I], now=NOW)
    assert (result.status, result.kind, result.claims) == ("loaded", "837I", 2)
    with db_sessions() as session:
        assert queries.file_totals(session, result.source_file_id or 0).billed_total == Decimal(
            "139.95"
        )  # CLM02 89.95 + 50.00
    assert counts(db_sessions)["service_lines"] == 3


def test_same_bytes_again_are_a_duplicate(db_sessions: Sessions, tmp_path: Path) -> None:
    first = ingest_paths(db_sessions, [MANAGED_CARE_835], now=NOW)[0]
    before = counts(db_sessions)
    again = ingest_paths(db_sessions, [copy(MANAGED_CARE_835, tmp_path, "renamed.835")])[0]
    assert first.status == "loaded"
    assert again.status == "duplicate"
    assert again.sha256 == first.sha256
    assert (again.claim_payments, again.paid_total) == (2, Decimal("945.00"))
    assert counts(db_sessions) == before


def test_resent_interchange_with_different_bytes_is_quarantined(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    ingest_paths(db_sessions, [MANAGED_CARE_835], now=NOW)
    resent = edited(
        MANAGED_CARE_835, tmp_path, "resent.835", b"TRN*1*7170066655", b"TRN*1*7170066656"
    )
    assert sniff_interchange(resent.read_bytes()) == ("000000005", "000000907")

    (result,) = ingest_paths(db_sessions, [resent], now=NOW)

    assert result.status == "quarantined"
    assert result.kind == "835"
    assert result.claim_payments == 0
    (conflict,) = [f for f in result.findings if f["code"] == "resent-interchange"]
    assert conflict["severity"] == "error"
    assert "ISA13=000000907" in conflict["message"]
    assert "(835) from sender 30:000000005 to receiver 30:12345" in conflict["message"]
    assert MANAGED_CARE_835.name in conflict["message"]
    with db_sessions() as session:
        assert len(session.scalars(select(Remittance)).all()) == 1
        row = queries.get_source_file_by_sha256(session, result.sha256)
        assert row is not None and row.status == "quarantined"
        assert queries.get_blob(session, result.sha256) == resent.read_bytes()

    (unchecked,) = ingest_paths(db_sessions, [resent], now=NOW, check_resent=False)
    assert unchecked.status == "loaded"  # a quarantined file is re-evaluated on re-ingest


DEMO = CORPUS / "LinuxForHealth__x12"


def test_same_sender_and_isa13_in_an_837_and_an_835_both_load(db_sessions: Sessions) -> None:
    """demo.837 and demo.835 share ISA05/06, ISA07/08 and ISA13: different kinds, no re-send."""
    claims, payments = DEMO / "demo-file__demo.837", DEMO / "demo-file__demo.835"
    assert sniff_interchange(claims.read_bytes()) == sniff_interchange(payments.read_bytes())

    results = ingest_paths(db_sessions, [claims, payments], now=NOW)

    assert [(r.kind, r.status) for r in results] == [("837P", "loaded"), ("835", "loaded")]
    assert not [f for r in results for f in r.findings if f["code"] == "resent-interchange"]


def test_same_isa13_to_another_receiver_is_not_a_resend(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    ingest_paths(db_sessions, [MANAGED_CARE_835], now=NOW)
    original = MANAGED_CARE_835.read_bytes()
    isa = original[:106]
    receiver = isa.split(b"*")[8]
    other = tmp_path / "other-receiver.835"
    body = original[106:]
    trn = b"TRN*1*7170066655*1935665544"
    assert trn in body  # another check too, or the re-sent check rule would hold it
    body = body.replace(trn, b"TRN*1*7170066656*1935665544")
    other.write_bytes(isa.replace(receiver, b"OTHER".ljust(len(receiver))) + body)

    (result,) = ingest_paths(db_sessions, [other], now=NOW)

    assert result.status == "loaded"


def test_an_interchange_only_quarantined_before_does_not_block(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    broken = edited(MANAGED_CARE_835, tmp_path, "broken.835", b"SE*26*112233", b"SE*26*999999")
    assert ingest_paths(db_sessions, [broken])[0].status == "quarantined"
    assert ingest_paths(db_sessions, [MANAGED_CARE_835])[0].status == "loaded"


def test_fatal_file_is_quarantined_with_nothing_loaded(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.835"
    data = MANAGED_CARE_835.read_bytes()
    truncated.write_bytes(data[: data.index(b"SE*26")])  # no SE, GE or IEA: cut in transit

    (result,) = ingest_paths(db_sessions, [truncated], now=NOW)

    assert result.status == "quarantined"
    assert result.kind == "835"
    assert any(f["severity"] == "fatal" and f["segment_id"] == "SE" for f in result.findings)
    table = counts(db_sessions)
    assert table["claim_payments"] == table["remittances"] == table["adjustments"] == 0
    assert table["file_blobs"] == 1
    with db_sessions() as session:
        row = queries.get_source_file_by_sha256(session, result.sha256)
        assert row is not None
        assert row.status == "quarantined"
        assert "fatal" in row.error_summary
        assert row.findings == list(result.findings)


def test_not_x12_is_quarantined_and_a_missing_path_raises(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not an EDI file\n")
    (result,) = ingest_paths(db_sessions, [notes])
    assert (result.status, result.kind) == ("quarantined", "unknown")
    assert [f["code"] for f in result.findings if f["severity"] == "fatal"] == ["not-x12"]

    with pytest.raises(IngestPathError, match="no such file"):
        ingest_paths(db_sessions, [MANAGED_CARE_835, tmp_path / "missing.835"])
    assert counts(db_sessions)["source_files"] == 1  # nothing was ingested before the check


def test_folders_are_walked_sorted_and_hidden_files_skipped(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "b").mkdir(parents=True)
    (inbox / ".cache").mkdir()
    copy(COMMERCIAL_837P, inbox / "b", "claims.837")
    copy(MANAGED_CARE_835, inbox, "a.835")
    copy(ACCEPTED_277CA, inbox, ".partial.277")
    copy(ACCEPTED_277CA, inbox / ".cache", "acks.277")

    (inbox / "README.md").write_text("# Drop folder\n")
    (inbox / "manifest.json").write_text("{}\n")
    copy(MANAGED_CARE_835, inbox, "remit.txt")  # .txt is a common name for real X12

    results = ingest_paths(db_sessions, [inbox])

    assert [Path(r.file).name for r in results] == ["a.835", "claims.837", "remit.txt"]
    assert all(r.status != "quarantined" for r in results)
    # Named on its own, a README is read, and quarantined as what it is.
    (readme,) = ingest_paths(db_sessions, [inbox / "README.md"])
    assert readme.status == "quarantined"


class SimulatedCrash(BaseException):
    """The process dying mid-file (a kill, a power cut): nothing in ingest may handle it, the
    way a loader bug is handled (that quarantines the file)."""


def test_crash_mid_file_leaves_it_received_and_a_rerun_loads_it_once(
    db_sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_insert = queries.insert_claim_payments
    calls = {"n": 0}

    def crash_on_second_batch(session: Session, rows: Any) -> list[int]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise SimulatedCrash("disk full")
        return real_insert(session, rows)

    monkeypatch.setattr(queries, "insert_claim_payments", crash_on_second_batch)
    with pytest.raises(SimulatedCrash):
        ingest_paths(db_sessions, [MANAGED_CARE_835], batch_size=1)
    assert calls["n"] == 2
    after_crash = counts(db_sessions)
    assert after_crash["claim_payments"] == after_crash["remittances"] == 0
    assert after_crash["file_blobs"] == after_crash["source_files"] == 1
    with db_sessions() as session:
        assert [f.status for f in queries.list_source_files(session)] == ["received"]

    monkeypatch.setattr(queries, "insert_claim_payments", real_insert)
    (result,) = ingest_paths(db_sessions, [MANAGED_CARE_835], batch_size=1)

    assert result.status == "loaded"
    assert (result.claim_payments, result.paid_total) == (2, Decimal("945.00"))
    table = counts(db_sessions)
    assert table["source_files"] == table["file_blobs"] == table["remittances"] == 1
    assert (table["claim_payments"], table["service_payments"], table["adjustments"]) == (2, 2, 5)


def test_rerun_of_a_received_file_clears_rows_left_from_an_earlier_attempt(
    db_sessions: Sessions,
) -> None:
    """Even if rows of a file were somehow committed, re-loading never doubles them."""
    (first,) = ingest_paths(db_sessions, [MANAGED_CARE_835], batch_size=1)
    loaded = counts(db_sessions)
    with db_sessions() as session, session.begin():
        session.execute(
            update(SourceFile)
            .where(SourceFile.id == first.source_file_id)
            .values(status="received")
        )
    (again,) = ingest_paths(db_sessions, [MANAGED_CARE_835], batch_size=1)
    assert again.status == "loaded"
    assert counts(db_sessions) == loaded


def test_a_sub_cent_amount_quarantines_instead_of_rounding(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    odd = edited(
        MANAGED_CARE_835,
        tmp_path,
        "odd.835",
        b"CLP*5554555444*1*800.00*450.00",
        b"CLP*5554555444*1*800.00*450.005",
    )
    (result,) = ingest_paths(db_sessions, [odd])
    assert result.status == "quarantined"
    (unstorable,) = [f for f in result.findings if f["code"] == "unstorable-value"]
    assert (unstorable["severity"], unstorable["segment_id"]) == ("fatal", "CLP")
    assert unstorable["segment_index"] == 13  # the CLP is the file's 13th segment
    assert counts(db_sessions)["claim_payments"] == 0


def test_a_value_the_database_refuses_quarantines_the_file(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    """PostgreSQL refuses NUL in text; SQLite stores it. Either way nothing is half-loaded."""
    nul = edited(MANAGED_CARE_835, tmp_path, "nul.835", b"CLP*87654", b"CLP*87\x00654")
    (result,) = ingest_paths(db_sessions, [nul])
    dialect = db_sessions.kw["bind"].dialect.name
    if dialect == "postgresql":
        assert result.status == "quarantined"
        assert [f["code"] for f in result.findings if f["severity"] == "fatal"] == [
            "database-refused"
        ]
        assert counts(db_sessions)["claim_payments"] == 0
    else:
        assert result.status == "loaded"
        assert counts(db_sessions)["claim_payments"] == 2


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("CLP03", b"1e400", "bad-amount"),  # finite, but quantize() raised on it
        ("CLP03", b"9E+999999", "bad-amount"),  # summing two of these overflowed the context
        ("CLP05", b"1e20", "bad-value"),  # optional: an error, and the file still loads
    ],
)
def test_an_amount_too_large_to_be_money_is_a_finding_not_a_crash(
    db_sessions: Sessions, tmp_path: Path, field: str, value: bytes, code: str
) -> None:
    clp = b"CLP*5554555444*1*800.00*450.00*300.00"
    parts = clp.split(b"*")
    parts[int(field[3:])] = value
    huge = edited(MANAGED_CARE_835, tmp_path, "huge.835", clp, b"*".join(parts))
    (result,) = ingest_paths(db_sessions, [huge])
    (finding,) = [f for f in result.findings if f["code"] == code]
    assert (finding["segment_id"], finding["segment_index"]) == ("CLP", 13)
    assert "too large" in finding["message"]
    if code == "bad-amount":
        assert result.status == "quarantined"
        assert counts(db_sessions)["claim_payments"] == 0
    else:
        assert result.status == "loaded"


def test_a_reader_bug_quarantines_that_file_and_the_folder_goes_on(
    db_sessions: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injected into one 835 handler; the 837 in the same folder must still load."""
    from claimsync_console.x12.reader_835 import Remittance835Reader

    def broken(self: Remittance835Reader, segment: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(Remittance835Reader, "_cas", broken)
    folder = tmp_path / "drop"
    folder.mkdir()
    copy(MANAGED_CARE_835, folder, "a.835")
    copy(COMMERCIAL_837P, folder, "b.837")
    remittance, claims = ingest_paths(db_sessions, [folder])
    assert (remittance.status, claims.status) == ("quarantined", "loaded")
    (finding,) = [f for f in remittance.findings if f["code"] == "reader-error"]
    assert (finding["severity"], finding["segment_id"]) == ("fatal", "CAS")
    assert counts(db_sessions)["claim_payments"] == 0


def test_a_loader_bug_quarantines_that_file_with_its_segment(
    db_sessions: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injected into the row mapping of claim payments (the store side)."""
    from claimsync_console.store import rows

    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("a bug")

    monkeypatch.setattr(rows, "claim_payment_row", broken)
    (result,) = ingest_paths(db_sessions, [copy(MANAGED_CARE_835, tmp_path)])
    assert result.status == "quarantined"
    (finding,) = [f for f in result.findings if f["code"] == "load-error"]
    assert finding["severity"] == "fatal" and finding["segment_index"] >= 13
    assert "TypeError" in finding["message"]
    assert counts(db_sessions)["claim_payments"] == 0 and counts(db_sessions)["remittances"] == 0


def _new_isa13(data: bytes, control: bytes) -> bytes:
    isa = data[:106]
    old = isa.split(b"*")[13]
    iea = b"IEA*1*" + old
    assert iea in data
    return isa.replace(old, control) + data[106:].replace(iea, b"IEA*1*" + control)


def test_the_same_check_under_a_new_isa13_is_held_for_a_person(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    """A re-sent ERA with a new interchange number would post every payment twice."""
    (first,) = ingest_paths(db_sessions, [MANAGED_CARE_835], now=NOW)
    again = tmp_path / "resent.835"
    again.write_bytes(_new_isa13(MANAGED_CARE_835.read_bytes(), b"000000999"))
    (result,) = ingest_paths(db_sessions, [again], now=NOW)
    assert result.status == "quarantined"
    (held,) = [f for f in result.findings if f["code"] == "resent-check"]
    assert held["segment_id"] == "ST" and held["segment_index"] > 0
    assert (
        "check 7170066655" in held["message"]
        and f"source file {first.source_file_id}" in (held["message"])
    )
    assert counts(db_sessions)["remittances"] == 1


def test_the_same_interchange_twice_in_one_file_is_held(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    twice = tmp_path / "twice.835"
    data = MANAGED_CARE_835.read_bytes()
    twice.write_bytes(data + b"\n" + data)
    (result,) = ingest_paths(db_sessions, [twice], now=NOW)
    assert result.status == "quarantined"
    (held,) = [f for f in result.findings if f["code"] == "resent-check"]
    assert "earlier in this file" in held["message"]
    assert counts(db_sessions)["remittances"] == counts(db_sessions)["claim_payments"] == 0


def test_a_held_check_can_be_released_by_a_person(db_sessions: Sessions, tmp_path: Path) -> None:
    from claimsync_console.engine.quarantine import release_file

    ingest_paths(db_sessions, [MANAGED_CARE_835], now=NOW)
    again = tmp_path / "resent.835"
    again.write_bytes(_new_isa13(MANAGED_CARE_835.read_bytes(), b"000000999"))
    (held,) = ingest_paths(db_sessions, [again], now=NOW)
    released = release_file(
        db_sessions, held.source_file_id, operator="ana", role="supervisor",
        note="the payer re-issued this check", now=NOW,
    )  # fmt: skip
    assert released.claim_payments == 2
    assert counts(db_sessions)["remittances"] == 2


def test_status_counts_a_debit_bpr_negative_as_reconcile_does(
    db_sessions: Sessions, tmp_path: Path
) -> None:
    from claimsync_console.engine.status import store_summary

    ingest_paths(db_sessions, [MANAGED_CARE_835], now=NOW)
    debit = edited(MANAGED_CARE_835, tmp_path, "debit.835", b"BPR*I*945.00*C*", b"BPR*I*945.00*D*")
    debit.write_bytes(_new_isa13(debit.read_bytes(), b"000000777"))
    (result,) = ingest_paths(db_sessions, [debit], now=NOW)
    assert result.status == "loaded"  # BPR03 differs: another check
    with db_sessions() as session:
        summary = store_summary(session)
    assert (summary["remittances"], summary["payment_total"]) == (2, "0.00")
