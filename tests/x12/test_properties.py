"""Property tests: mutated bytes never raise; a reader only ever reports findings."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claimsync_console.x12.document import READER_ERROR, read_document
from claimsync_console.x12.findings import X12ParseError
from tests.x12.test_reader_835 import good_835

SEED = good_835()


def _consume(data: bytes) -> None:
    reader = read_document(data, "mutated.835")
    try:
        for _ in reader:
            pass
    except X12ParseError:
        pass  # the one exception a reader may raise
    for finding in reader.findings:
        assert finding.message
        # The reader's safety net turns a bug into this finding; here it must never fire.
        assert finding.code != READER_ERROR, finding


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=12,
    )
)
def test_byte_flips_never_raise(flips: list[tuple[int, int]]) -> None:
    data = bytearray(SEED)
    for position, value in flips:
        data[position] = value
    _consume(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(SEED)), st.integers(0, len(SEED)))
def test_truncations_and_splices_never_raise(start: int, end: int) -> None:
    _consume(SEED[:start] + SEED[end:])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    _consume(data)
    _consume(SEED[:120] + data)
