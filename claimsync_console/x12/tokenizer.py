"""Delimiter-aware, streaming X12 tokenizer.

The delimiters come from each ISA (element separator at byte 3, repetition separator ISA11,
component separator ISA16, segment terminator right after ISA16), so a file holding several
interchanges with different delimiters still splits correctly. The input is read in chunks:
memory stays flat however large the file is.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from itertools import repeat
from operator import methodcaller
from typing import BinaryIO

CHUNK_SIZE = 1 << 20
BATCH = 256  # segments per list handed to a reader: larger lists woke the cyclic GC more often
ISA_LENGTH = 106
_WHITESPACE = " \t\r\n\x00\ufeff"


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str = "*"
    component: str = ":"
    repetition: str = "^"
    segment: str = "~"


class Segment:
    """One segment. ``elements[0]`` is the segment id, so ``elements[n]`` is element n."""

    __slots__ = ("delimiters", "elements", "id", "index")

    def __init__(self, index: int, elements: list[str], delimiters: Delimiters) -> None:
        self.index = index
        self.elements = elements
        self.id = elements[0]
        self.delimiters = delimiters

    def get(self, position: int) -> str:
        """Element ``position`` or '' when the segment is shorter (X12 drops trailing empties)."""
        elements = self.elements
        return elements[position] if position < len(elements) else ""

    def components(self, position: int) -> list[str]:
        return self.get(position).split(self.delimiters.component)

    def raw(self) -> str:
        return self.delimiters.element.join(self.elements)

    def __repr__(self) -> str:
        return f"Segment({self.index}, {self.raw()!r})"


class TokenizerError(Exception):
    """The byte stream is not X12 at all (no ISA header where one must be)."""

    def __init__(self, message: str, segment_index: int = 0) -> None:
        super().__init__(message)
        self.segment_index = segment_index


def sniff_encoding(head: bytes) -> str:
    """UTF-16 files come from Windows exports; everything else is read as UTF-8."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(head) >= 2 and head[0] == 0 and head[1] != 0:
        return "utf-16-be"
    if len(head) >= 2 and head[1] == 0 and head[0] != 0:
        return "utf-16-le"
    return "utf-8-sig"


def open_text(source: BinaryIO) -> io.TextIOWrapper:
    """Wrap a binary stream so the tokenizer sees text whatever the encoding."""
    buffered = io.BufferedReader(source) if not hasattr(source, "peek") else source  # type: ignore[type-var]
    head = buffered.peek(4)[:4]
    return io.TextIOWrapper(
        buffered,
        encoding=sniff_encoding(head),
        errors="replace",
        newline="",
    )


def read_delimiters(isa: str) -> Delimiters:
    """Read delimiters from the ISA text; ``isa`` starts at 'ISA' and holds at least 106 chars
    when the header is well formed. Tolerates a short ISA by counting elements instead."""
    element = isa[3]
    parts = isa.split(element, 16)
    if len(parts) < 17 or not parts[16]:
        raise TokenizerError("ISA header is incomplete: it must hold 16 elements")
    component = parts[16][0]
    tail = parts[16][1:]
    segment = tail[0] if tail else "~"
    if segment in " \t" and len(tail) > 1:
        segment = tail.lstrip(" \t")[:1] or "~"
    repetition = parts[11] if len(parts[11]) == 1 and not parts[11].isalnum() else ""
    return Delimiters(element=element, component=component, repetition=repetition, segment=segment)


def guess_fragment_delimiters(text: str) -> Delimiters:
    """A bare ST..SE fragment has no ISA to read, so take the element separator from 'ST?' and
    the terminator from the first character that can close 'ST*835*0001'."""
    element = text[2]
    for char in text[3:64]:
        if not char.isalnum() and char not in (element, " "):
            return Delimiters(element=element, segment=char)
    return Delimiters(element=element)


def _isa_inside(text: str, terminator: str, fresh: bool) -> bool:
    """Could a segment in ``text`` be an ISA (other than the one just read when ``fresh``)?
    A regex over the chunk, not a test per segment: a name like LISA must not count."""
    if not fresh and text.lstrip(_WHITESPACE).startswith("ISA"):
        return True
    pattern = re.escape(terminator) + "[" + re.escape(_WHITESPACE) + "]*ISA"
    return re.search(pattern, text) is not None


class Tokenizer:
    """Iterates the segments of a text stream, re-reading delimiters at every ISA."""

    def __init__(self, text: io.TextIOWrapper, chunk_size: int = CHUNK_SIZE) -> None:
        self._text = text
        self._chunk_size = chunk_size
        self.delimiters = Delimiters()
        self.segment_count = 0
        self.bare_fragment = False

    def _read(self) -> str:
        return self._text.read(self._chunk_size)

    def _start_interchange(self, buffer: str) -> str:
        """Make sure the whole ISA is buffered, then take its delimiters."""
        while len(buffer) < ISA_LENGTH + 2:
            more = self._read()
            if not more:
                break
            buffer += more
        self.delimiters = read_delimiters(buffer)
        return buffer

    def __iter__(self) -> Iterator[Segment]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Segment]]:
        """The segments in lists of up to ``BATCH`` each, in file order.

        The hot loop of a reader iterates these lists directly: a generator resumed per segment
        cost more than splitting the segment did."""
        buffer = self._read().lstrip(_WHITESPACE)
        while len(buffer) < 4:
            more = self._read()
            if not more:
                break
            buffer = (buffer + more).lstrip(_WHITESPACE)
        if buffer.startswith("ISA") and len(buffer) > 3:
            buffer = self._start_interchange(buffer)
        elif buffer.startswith("ST") and len(buffer) > 3 and not buffer[2].isalnum():
            self.delimiters = guess_fragment_delimiters(buffer)
            self.bare_fragment = True
        else:
            raise TokenizerError("the file does not start with an ISA header, so it is not X12", 1)
        pending: str | None = buffer
        fresh = True
        while pending is not None:
            pending, fresh = yield from self._split(pending, fresh)

    def _split(
        self, buffer: str, fresh: bool
    ) -> Generator[list[Segment], None, tuple[str | None, bool]]:
        """Yield the whole segments in ``buffer`` and return what is left to read next.

        Returns early, with the unread text, when an ISA brings new delimiters, and None once
        the stream is exhausted (an empty tail is not the end: a chunk may end on a terminator).
        ``fresh`` says the buffer starts with the ISA its delimiters were just read from: that
        ISA is not asked again, because a whitespace ISA16 reads differently once the piece is
        stripped, and asking again restarted the interchange forever."""
        delimiters = self.delimiters
        terminator, element = delimiters.segment, delimiters.element
        more = self._read()
        text = buffer + more if more else buffer
        pieces = text.split(terminator)
        tail = pieces.pop() if more else ""
        if not _isa_inside(text, terminator, fresh):
            # No ISA can change the delimiters in this chunk: build its segments with C-level
            # map()s, a batch at a time. This is the whole of the hot path.
            del text
            stripped = list(filter(None, map(str.strip, pieces, repeat(_WHITESPACE))))
            del pieces
            split = methodcaller("split", element)
            for start in range(0, len(stripped), BATCH):
                part = stripped[start : start + BATCH]
                first = self.segment_count + 1
                self.segment_count += len(part)
                yield list(
                    map(
                        Segment,
                        range(first, first + len(part)),
                        map(split, part),
                        repeat(delimiters),
                    )
                )
            return (tail if more else None), False
        del text
        batch: list[Segment] = []
        for position, piece in enumerate(pieces):
            piece = piece.strip(_WHITESPACE)
            if not piece:
                continue
            if (
                piece.startswith("ISA")
                and (position or not fresh)
                and self._changes_delimiters(piece)
            ):
                if batch:
                    yield batch
                rest = terminator.join([*pieces[position:], tail]).lstrip(_WHITESPACE)
                return self._start_interchange(rest), True
            self.segment_count += 1
            batch.append(Segment(self.segment_count, piece.split(element), delimiters))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch
        return (tail if more else None), False

    def _changes_delimiters(self, isa_piece: str) -> bool:
        try:
            return read_delimiters(isa_piece + self.delimiters.segment) != self.delimiters
        except (TokenizerError, IndexError):
            return False


def tokenize(source: BinaryIO | bytes, chunk_size: int = CHUNK_SIZE) -> Iterator[Segment]:
    """Segments of an X12 byte stream or byte string."""
    stream: BinaryIO = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    return iter(Tokenizer(open_text(stream), chunk_size))
