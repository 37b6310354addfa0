"""The tokenizer splits the same way whatever the chunk boundaries are."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claimsync_console.x12.tokenizer import Tokenizer, TokenizerError, open_text, tokenize
from tests.x12.test_reader_835 import good_835


def split(data: bytes, chunk_size: int) -> list[str]:
    return [s.raw() for s in Tokenizer(open_text(io.BytesIO(data)), chunk_size)]


def test_chunk_that_ends_on_a_terminator_does_not_end_the_file() -> None:
    data = good_835()
    whole = split(data, 1 << 20)
    first_terminator = data.index(b"~\n") + 2
    assert split(data, first_terminator) == whole
    assert whole[-1].startswith("IEA")


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=400))
def test_any_chunk_size_gives_the_same_segments(chunk_size: int) -> None:
    data = good_835()
    assert split(data, chunk_size) == split(data, 1 << 20)


def test_delimiters_come_from_the_isa() -> None:
    data = good_835().replace(b"*", b"|").replace(b"~", b"\x1c")
    segments = list(tokenize(data))
    assert segments[0].delimiters.element == "|"
    assert segments[0].delimiters.segment == "\x1c"
    assert segments[0].delimiters.repetition == "^"
    assert [s.id for s in segments[:3]] == ["ISA", "GS", "ST"]


def test_not_x12_raises_the_tokenizer_error() -> None:
    with pytest.raises(TokenizerError):
        list(tokenize(b"hello, world"))
