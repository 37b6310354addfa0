"""The reader's safety net: a bug in a segment handler costs that file, said where, and no PHI.

There is no known such bug (the property and corpus tests assert the net never fires), so one
is injected into a handler; everything around it is the real reader."""

from __future__ import annotations

import logging

import pytest

from claimsync_console.x12.document import READER_ERROR
from claimsync_console.x12.findings import Severity
from claimsync_console.x12.reader_835 import Remittance835Reader
from tests.x12.test_reader_835 import CLAIM_A, HEADER, envelope, good_835, read

PHI = "DOE JANE MEMBER123"


def _broken_nm1(self: Remittance835Reader, segment: object) -> None:
    raise ValueError(f"cannot handle {PHI}")


def test_a_handler_bug_is_one_fatal_finding_at_its_segment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(Remittance835Reader, "_nm1", _broken_nm1)
    caplog.set_level(logging.DEBUG)
    reader, _ = read(good_835())
    lines = envelope(HEADER + CLAIM_A)
    first_nm1 = next(i for i, line in enumerate(lines, 1) if line.startswith("NM1*QC"))
    (finding,) = [f for f in reader.findings if f.code == READER_ERROR]
    assert (finding.severity, finding.segment_id, finding.segment_index) == (
        Severity.FATAL,
        "NM1",
        first_nm1,
    )
    assert "ValueError" in finding.message
    assert reader.has_fatal  # so ingest quarantines it instead of loading half
    assert PHI not in finding.message
    assert "reader failed on test.835" in caplog.text and PHI not in caplog.text
