"""The document reader: envelope checks and dispatch of each transaction set.

It owns ISA/GS/ST/SE/GE/IEA. Control-number mismatches and missing trailers are FATAL, because
they mean the file was truncated or spliced and must not be half-loaded. Count mismatches are
ERRORs: the content is all there, only a trailer count is off, as in many published samples.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import BinaryIO

from claimsync_console.domain import DocumentKind
from claimsync_console.x12.base import TransactionContext, TransactionReader
from claimsync_console.x12.findings import Finding, FindingSink, Severity, code_place
from claimsync_console.x12.reader_835 import Remittance835Reader
from claimsync_console.x12.tokenizer import Segment, Tokenizer, TokenizerError, open_text

ENVELOPE = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE", "TA1"})
READER_ERROR = "reader-error"
log = logging.getLogger(__name__)


def transaction_kind(st01: str, version: str) -> DocumentKind:
    """Which reader a transaction set needs, from ST01 and its implementation guide."""
    if st01 == "835":
        return DocumentKind.REMITTANCE_835
    if st01 == "837":
        if "X223" in version or "X096" in version:
            return DocumentKind.CLAIM_837I
        return DocumentKind.CLAIM_837P
    if st01 == "277" and ("X214" in version or "X167" in version or not version):
        return DocumentKind.STATUS_277CA  # X167: the 4040 claim acknowledgement, same loops
    return DocumentKind.UNKNOWN


def make_reader(
    kind: DocumentKind, context: TransactionContext, sink: FindingSink
) -> TransactionReader:
    if kind is DocumentKind.REMITTANCE_835:
        return Remittance835Reader(context, sink)
    if kind in (DocumentKind.CLAIM_837P, DocumentKind.CLAIM_837I):
        from claimsync_console.x12.reader_837 import Claim837Reader

        return Claim837Reader(context, sink, kind)
    from claimsync_console.x12.reader_277 import Status277Reader

    return Status277Reader(context, sink)


class _Envelope:
    """Open envelope state: the ISA, GS and ST currently open, and their counts."""

    def __init__(self) -> None:
        self.isa: Segment | None = None
        self.gs: Segment | None = None
        self.st: Segment | None = None
        self.group_count = 0
        self.transaction_count = 0
        self.segment_count = 0
        self.reader: TransactionReader | None = None
        self.skipping = False


class DocumentReader:
    """Iterate to get domain objects in file order; then read ``findings`` and ``kind``."""

    def __init__(self, source: BinaryIO | bytes, file_name: str) -> None:
        self._source = source
        self.file_name = file_name
        self.sink = FindingSink(file_name)
        self.kinds: list[DocumentKind] = []
        self.skipped: list[str] = []
        self._env = _Envelope()
        self._bare = False

    @property
    def findings(self) -> list[Finding]:
        return self.sink.findings

    @property
    def has_fatal(self) -> bool:
        return self.sink.has_fatal

    @property
    def kind(self) -> DocumentKind:
        return self.kinds[0] if self.kinds else DocumentKind.UNKNOWN

    def __iter__(self) -> Iterator[object]:
        last = 0
        env = self._env
        segment: Segment | None = None  # the one being read, for a finding if a reader fails
        try:
            for batch in self._tokenizer().batches():
                for segment in batch:
                    # The body of a transaction set is nearly every segment: hand it to the
                    # reader's dispatch table without the envelope dispatch below (a call per
                    # segment was a tenth of the 835 read time).
                    sid = segment.id
                    if env.st is not None and sid not in ENVELOPE:
                        env.segment_count += 1
                        reader = env.reader
                        if reader is None:
                            out = None
                        else:
                            handler = reader.dispatch.get(sid)
                            out = handler(segment) if handler else reader.feed(segment)
                    else:
                        out = self._segment(segment)
                    if out:
                        yield from out
                last = batch[-1].index  # only the tokenizer raises below, between batches
                segment = None
            yield from self._end_of_file(last)
        except TokenizerError as error:
            self._fatal(error.segment_index or last + 1, "", str(error), "not-x12")
            return
        except UnicodeError as error:  # pragma: no cover - errors="replace" makes this rare
            self._fatal(last + 1, "", f"cannot decode the file: {error}", "encoding")
            return
        except Exception as error:  # a bug of ours: the file is still kept, and says where
            self._reader_failed(error, segment, last)

    def _reader_failed(self, error: Exception, segment: Segment | None, last: int) -> None:
        """A reader bug must cost one file, not the run: the file is quarantined with a fatal
        finding at the segment that set it off (never its text, which may hold PHI), the
        rest of a drop folder still loads, and the property tests assert this never fires."""
        index, sid = (segment.index, segment.id) if segment is not None else (last + 1, "")
        log.error("reader failed on %s segment %d (%s)", self.file_name, index, code_place(error))
        self._fatal(
            index,
            sid,
            f"ClaimSync could not read this segment ({type(error).__name__}); the file is kept "
            "unloaded: report it with the file",
            READER_ERROR,
        )

    def _tokenizer(self) -> Tokenizer:
        source = self._source
        stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
        return Tokenizer(open_text(stream))

    # -- segment dispatch ---------------------------------------------------------------------

    def _segment(self, segment: Segment) -> list[object] | None:
        env = self._env
        sid = segment.id
        if env.st is not None and sid not in ENVELOPE:
            env.segment_count += 1
            if env.reader is not None:
                return env.reader.feed(segment)
            return None
        if sid == "ISA":
            self._isa(segment)
        elif sid == "GS":
            self._gs(segment)
        elif sid == "ST":
            return self._st(segment)
        elif sid == "SE":
            return self._se(segment)
        elif sid == "GE":
            self._ge(segment)
        elif sid == "IEA":
            self._iea(segment)
        elif sid == "TA1":
            pass
        else:
            self._add(
                Severity.WARNING,
                segment,
                f"segment {sid} stands outside any transaction set",
                "unexpected-segment",
            )
        return None

    def _isa(self, segment: Segment) -> None:
        env = self._env
        if env.isa is not None:
            self._fatal(
                segment.index,
                "ISA",
                f"ISA {segment.get(13)} starts before IEA closed interchange {env.isa.get(13)}",
                "missing-iea",
            )
        if len(segment.elements) != 17:
            self._fatal(
                segment.index,
                "ISA",
                f"ISA has {len(segment.elements) - 1} elements; it must have 16",
                "isa-elements",
            )
        elif len(segment.raw()) != 105:
            self._add(
                Severity.ERROR,
                segment,
                f"ISA is {len(segment.raw()) + 1} characters wide; it must be 106",
                "isa-width",
            )
        env.isa = segment
        env.group_count = 0

    def _gs(self, segment: Segment) -> None:
        env = self._env
        if env.isa is None:
            self._fatal(
                segment.index,
                "GS",
                "GS stands outside an interchange (no ISA before it)",
                "missing-isa",
            )
        if env.gs is not None:
            self._fatal(
                segment.index,
                "GS",
                f"GS {segment.get(6)} starts before GE closed group {env.gs.get(6)}",
                "missing-ge",
            )
        env.gs = segment
        env.group_count += 1
        env.transaction_count = 0

    def _st(self, segment: Segment) -> list[object] | None:
        env = self._env
        out = None
        if env.st is not None:
            self._fatal(
                segment.index,
                "ST",
                f"ST {segment.get(2)} starts before SE closed transaction {env.st.get(2)}",
                "missing-se",
            )
            out = env.reader.finish(segment.index - 1) if env.reader else None
        if env.gs is None:
            if env.isa is None and segment.index == 1:
                self._bare = True
                self._add(
                    Severity.ERROR,
                    segment,
                    "the file is a bare ST..SE fragment with no ISA/GS envelope",
                    "no-envelope",
                )
            elif not self._bare:
                self._fatal(
                    segment.index,
                    "ST",
                    "ST stands outside a functional group (no GS before it)",
                    "missing-gs",
                )
        env.st = segment
        env.segment_count = 1
        env.transaction_count += 1
        self._open_reader(segment)
        return out

    def _open_reader(self, st: Segment) -> None:
        env = self._env
        version = st.get(3) or (env.gs.get(8) if env.gs is not None else "")
        kind = transaction_kind(st.get(1), version)
        if kind is DocumentKind.UNKNOWN:
            label = f"{st.get(1)} ({version})" if version else st.get(1)
            self.skipped.append(label)
            self._add(
                Severity.WARNING,
                st,
                f"transaction set {label} is not a kind ClaimSync reads; skipped",
                "unsupported-transaction",
            )
            env.reader = None
            return
        if kind not in self.kinds:
            self.kinds.append(kind)
        isa, gs = env.isa, env.gs
        context = TransactionContext(
            file_name=self.file_name,
            interchange_control_number=isa.get(13) if isa else "",
            group_control_number=gs.get(6) if gs else "",
            transaction_control_number=st.get(2),
            version=version,
            sender_id=isa.get(6).strip() if isa else "",
            receiver_id=isa.get(8).strip() if isa else "",
            st_segment_index=st.index,
        )
        env.reader = make_reader(kind, context, self.sink)

    def _se(self, segment: Segment) -> list[object] | None:
        env = self._env
        st = env.st
        if st is None:
            self._fatal(segment.index, "SE", "SE without an open ST", "missing-st")
            return None
        env.segment_count += 1
        if segment.get(2) != st.get(2):
            self._fatal(
                segment.index,
                "SE",
                f"SE02 {segment.get(2)!r} does not match ST02 {st.get(2)!r}",
                "control-number",
            )
        if segment.get(1) != str(env.segment_count):
            self._add(
                Severity.ERROR,
                segment,
                f"SE01 says {segment.get(1)!r} segments, "
                f"but the transaction has {env.segment_count}",
                "se-count",
            )
        out = env.reader.finish(segment.index) if env.reader else None
        env.st = None
        env.reader = None
        return out

    def _ge(self, segment: Segment) -> None:
        env = self._env
        if env.gs is None:
            self._fatal(segment.index, "GE", "GE without an open GS", "missing-gs")
            return
        if segment.get(2) != env.gs.get(6):
            self._fatal(
                segment.index,
                "GE",
                f"GE02 {segment.get(2)!r} does not match GS06 {env.gs.get(6)!r}",
                "control-number",
            )
        if segment.get(1) != str(env.transaction_count):
            self._add(
                Severity.ERROR,
                segment,
                f"GE01 says {segment.get(1)!r} transaction sets, "
                f"but the group has {env.transaction_count}",
                "ge-count",
            )
        env.gs = None

    def _iea(self, segment: Segment) -> None:
        env = self._env
        if env.isa is None:
            self._fatal(segment.index, "IEA", "IEA without an open ISA", "missing-isa")
            return
        if segment.get(2) != env.isa.get(13):
            self._fatal(
                segment.index,
                "IEA",
                f"IEA02 {segment.get(2)!r} does not match ISA13 {env.isa.get(13)!r}",
                "control-number",
            )
        if segment.get(1) != str(env.group_count):
            self._add(
                Severity.ERROR,
                segment,
                f"IEA01 says {segment.get(1)!r} groups, but the interchange has {env.group_count}",
                "iea-count",
            )
        env.isa = None

    def _end_of_file(self, last: int) -> Iterator[object]:
        env = self._env
        if env.st is not None:
            self._fatal(
                last,
                "SE",
                f"the file ends inside transaction set {env.st.get(2)} (no SE)",
                "missing-se",
            )
            if env.reader is not None:
                yield from env.reader.finish(last)
        if env.gs is not None and not self._bare:
            self._fatal(
                last, "GE", f"the file ends inside group {env.gs.get(6)} (no GE)", "missing-ge"
            )
        if env.isa is not None:
            self._fatal(
                last,
                "IEA",
                f"the file ends inside interchange {env.isa.get(13)} (no IEA)",
                "missing-iea",
            )
        if not self.kinds:
            found = ", ".join(self.skipped) if self.skipped else "none"
            self._fatal(
                last,
                "",
                f"the file holds no 835, 837 or 277CA transaction set (found: {found})",
                "no-supported-transaction",
            )

    # -- findings ------------------------------------------------------------------------------

    def _add(self, severity: Severity, segment: Segment, message: str, code: str) -> None:
        self.sink.add(severity, segment.index, segment.id, message, code)

    def _fatal(self, index: int, segment_id: str, message: str, code: str) -> None:
        self.sink.add(Severity.FATAL, index, segment_id, message, code)


def read_document(source: BinaryIO | bytes, file_name: str) -> DocumentReader:
    """A reader over one file; iterate it to stream domain objects."""
    return DocumentReader(source, file_name)
