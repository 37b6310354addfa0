"""The 277CA reader: claim-level acknowledgements only, accepted versus rejected, every code."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest

from claimsync_console.domain import ClaimStatus, DocumentKind, StatusCategoryClass, StatusCode
from claimsync_console.x12.document import DocumentReader, read_document
from tests.x12.corpus import CORPUS_DIR

ACCEPTED = "imsweb__x12-parser/src__test__resources__277_5010__x12_277CA_accepted.txt"
REJECTED = "imsweb__x12-parser/src__test__resources__277_5010__x12_277CA_rejected.txt"

pytestmark = pytest.mark.skipif(
    not (CORPUS_DIR / ACCEPTED).exists(), reason=f"no X12 corpus at {CORPUS_DIR}"
)


def _read_bytes(data: bytes, name: str) -> tuple[DocumentReader, list[ClaimStatus]]:
    reader = read_document(io.BytesIO(data), name)
    statuses = [obj for obj in reader if isinstance(obj, ClaimStatus)]
    return reader, statuses


def test_accepted_277ca() -> None:
    reader, statuses = _read_bytes((CORPUS_DIR / ACCEPTED).read_bytes(), ACCEPTED)
    assert reader.kind is DocumentKind.STATUS_277CA
    assert not reader.has_fatal
    # The receiver-level STC*A1:20 (HL 21) is a batch acknowledgement, not a claim.
    (status,) = statuses
    assert status.patient_control_number == "5781"
    assert status.payer_claim_control_number == "1107000000014420"
    assert status.status is StatusCategoryClass.ACCEPTED and status.accepted
    assert status.codes == (StatusCode("A2", "20", ""),)
    assert status.status_date == date(2011, 3, 11)
    assert status.charge == Decimal("125")
    assert status.payer.name == "NYSDOH"
    assert status.patient is not None and status.patient.member_id == "LL99999X"
    assert (status.segment_start, status.segment_end) == (21, 24)
    assert status.transaction_control_number == "000014420"


def test_rejected_277ca_with_pipe_component_separator() -> None:
    reader, statuses = _read_bytes((CORPUS_DIR / REJECTED).read_bytes(), REJECTED)
    assert not reader.has_fatal
    (status,) = statuses
    assert status.patient_control_number == "3920394930203"
    assert status.status is StatusCategoryClass.REJECTED and not status.accepted
    assert status.codes == (StatusCode("A7", "562", "85"),)
    assert status.charge == Decimal("199.14")
    assert status.payer_claim_control_number == "1107000000001120"


def test_repeated_stc_extra_composites_line_status_and_several_claims() -> None:
    """STC10/STC11 and a second STC add codes; status follows the first claim-level STC."""
    data = (CORPUS_DIR / ACCEPTED).read_bytes()
    data = data.replace(
        b"STC*A2:20*20110311*WQ*125~",
        b"STC*A3:21:85*20110311*U*125******A3:562*A3:153:85~\nSTC*A3:116~",
    )
    data = data.replace(
        b"DTP*472*D8*10010101~",
        b"DTP*472*D8*10010101~\nSVC*HC:99213*125~\nSTC*A3:454~\nREF*FJ*1~\n"
        b"TRN*2*5782~\nSTC*A1:19*20110312**80~\nREF*1K*ICN2~",
    )
    data = data.replace(b"STC*A1:20*20110311*WQ*125.0~", b"STC*A3:24*20110311*WQ*125.0~")
    reader, statuses = _read_bytes(data, "mutated.277")
    first, second = statuses
    assert first.status is StatusCategoryClass.REJECTED
    assert [(c.category, c.code, c.entity) for c in first.codes] == [
        ("A3", "21", "85"),
        ("A3", "562", ""),
        ("A3", "153", "85"),
        ("A3", "116", ""),
        ("A3", "454", ""),  # the line-level STC after SVC
    ]
    assert first.payer_claim_control_number == "1107000000014420"
    assert second.patient_control_number == "5782"
    assert second.status is StatusCategoryClass.ACCEPTED
    assert second.charge == Decimal("80") and second.status_date == date(2011, 3, 12)
    assert second.payer_claim_control_number == "ICN2"
    assert second.patient == first.patient
    # Only the envelope notices the inserted segments (SE01); the reader has nothing to say.
    assert {f.segment_id for f in reader.findings} <= {"SE"}


def test_bad_values_and_foreign_segments_are_findings() -> None:
    data = (CORPUS_DIR / ACCEPTED).read_bytes()
    data = data.replace(b"STC*A2:20*20110311*WQ*125~", b"STC*A2:20*2011X311*WQ*1x5~\nCLM*1*2~")
    reader, (status,) = _read_bytes(data, "bad.277")
    assert status.status_date is None and status.charge is None
    assert status.status is StatusCategoryClass.ACCEPTED
    codes = {(f.segment_id, f.severity.value, f.code) for f in reader.findings}
    assert ("STC", "error", "bad-date") in codes
    assert ("STC", "error", "bad-value") in codes
    assert ("CLM", "warning", "unexpected-segment") in codes


# The 4040 claim acknowledgement (004040X167): the same loops as the 277CA. Shaped on a
# clearinghouse's published sample; names and ids made up.
X167 = (
    "~".join(
        [
            "ISA*00*          *00*          *ZZ*CLEARINGHOUSE  *ZZ*PROVIDER       *170328*1539*^"
            "*00404*248113954*1*P*:",
            "GS*HN*CLEARINGHOUSE*PROVIDER*20170328*1539*74457822*X*004040X167",
            "ST*277*0001*004040X167",
            "BHT*0085*08*248113954*20170328*1539*TH",
            "HL*1**20*1",
            "NM1*AY*2*CLEARINGHOUSE INC*****FI*582574363",
            "TRN*1*74457822",
            "HL*2*1*21*1",
            "NM1*41*2*PROVIDER*****46*000000000",
            "HL*3*2*19*1",
            "NM1*85*1*CLINIC****24*615121337",
            "HL*4*3*PT",
            "NM1*QC*1*DOE*JANE****MI*X12344",
            "TRN*2*PCN5",
            "STC*A7:19::65*20170328*U*25.63",
            "SVC*HC:10060:A:B:C*4.15",
            "STC*A7:453:40:65*20170328*U*********PROCEDURE CODE MODIFIER #3 ON LINE #3 IS INVALID.",
            "SE*16*0001",
            "GE*1*74457822",
            "IEA*1*248113954",
        ]
    )
    + "~"
)


def test_the_4040_claim_acknowledgement_reads_as_a_277ca_with_its_free_text() -> None:
    reader, statuses = _read_bytes(X167.encode(), "x167.277")
    assert reader.kind is DocumentKind.STATUS_277CA and not reader.has_fatal
    (status,) = statuses
    assert (status.patient_control_number, status.status) == ("PCN5", StatusCategoryClass.REJECTED)
    assert status.charge == Decimal("25.63")
    first, line = status.codes
    assert (first.category, first.code, first.message) == ("A7", "19", "")
    assert (line.code, line.message) == ("453", "PROCEDURE CODE MODIFIER #3 ON LINE #3 IS INVALID.")


def test_a_277_without_claim_level_status_says_so() -> None:
    cut = X167.replace("HL*4*3*PT~NM1*QC*1*DOE*JANE****MI*X12344~TRN*2*PCN5~", "")
    cut = cut.replace("STC*A7:19::65*20170328*U*25.63~SVC*HC:10060:A:B:C*4.15~", "")
    cut = cut.replace("STC*A7:453:40:65*20170328*U*********PROCEDURE CODE MODIFIER #3 ON LINE #3"
                      " IS INVALID.~", "").replace("SE*16*", "SE*10*")  # fmt: skip
    reader, statuses = _read_bytes(cut.encode(), "empty.277")
    assert statuses == [] and not reader.has_fatal
    (warning,) = [f for f in reader.findings if f.code == "no-claim-status"]
    assert warning.segment_id == "SE"
