"""Ingest: files in, rows out, nothing lost and nothing loaded twice.

Each file goes through two transactions. The first stores its bytes and a ``received`` row and
commits, so whatever happens next the original is kept. The second parses the file as a stream
and loads every object in batches; it commits only if the reader found nothing fatal, otherwise
it rolls back and a small third transaction marks the file ``quarantined`` with its findings.
A crash inside the second leaves the file ``received``, and the next run simply loads it again
(the second transaction first clears anything of that file, so a re-run can never double rows).

Identity is the SHA-256 of the bytes: the same bytes again are a ``duplicate``. A different file
re-sending an interchange that is already loaded (same sender, receiver, ISA13 and kind:
engine/interchange.py) is quarantined for a human to decide, because loading it would post the
same payments twice; ``load_kept`` is how engine/quarantine.py loads it once they have.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from claimsync_console.domain import ZERO, DocumentKind
from claimsync_console.engine.gc_pause import paused_gc
from claimsync_console.engine.ingest_findings import (
    load_failed_finding,
    refused_finding,
    unstorable_finding,
)
from claimsync_console.engine.interchange import resent_interchange, sniff_interchange
from claimsync_console.engine.resent_check import resent_check
from claimsync_console.store import queries
from claimsync_console.store.loader import DEFAULT_BATCH_SIZE, BatchLoader, add_blob_streamed
from claimsync_console.store.rows import UnstorableValueError
from claimsync_console.x12.document import DocumentReader, read_document
from claimsync_console.x12.findings import Finding, Severity

log = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]


class IngestPathError(Exception):
    """A path given to ingest does not exist or cannot be read (the CLI exits with 2)."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one file. ``duplicate`` reports the totals the earlier load stored."""

    file: str
    sha256: str
    status: str
    kind: str
    claims: int = 0
    claim_payments: int = 0
    paid_total: Decimal = ZERO
    claim_statuses: int = 0
    findings: tuple[dict[str, Any], ...] = ()
    source_file_id: int | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; money as a decimal string, never a float."""
        return {
            "file": self.file,
            "sha256": self.sha256,
            "status": self.status,
            "kind": self.kind,
            "claims": self.claims,
            "claim_payments": self.claim_payments,
            "paid_total": str(self.paid_total),
            "claim_statuses": self.claim_statuses,
            "findings": [dict(f) for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class _Received:
    source_file_id: int
    status: str
    name: str


class _AlreadyLoaded(Exception):
    """Another process finished loading this file while we waited for its row lock."""


class _Quarantine(Exception):
    """Raised inside transaction 2 to roll it back; carries what the file's row should say."""

    def __init__(self, kind: str, findings: list[dict[str, Any]], summary: str) -> None:
        super().__init__(summary)
        self.kind = kind
        self.findings = findings
        self.summary = summary


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "severity": finding.severity.value,
        "segment_index": finding.segment_index,
        "segment_id": finding.segment_id,
        "code": finding.code,
        "message": finding.message,
    }


# -- paths -------------------------------------------------------------------------------------


NOT_X12_SUFFIXES = frozenset({".md", ".json", ".toml", ".yaml", ".yml", ".pdf", ".html"})


def collect_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named, plus files under folders (recursive, sorted, hidden ones skipped).

    In a folder, files that are plainly documentation or metadata (``NOT_X12_SUFFIXES``: a drop
    folder's README or manifest) are not X12 and would only fill the quarantine; a file named
    on its own is always read, whatever its name.

    Every path is checked before any file is ingested, so a typo never leaves a half-done run."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise IngestPathError(f"{given}: no such file or directory")
        if path.is_dir():
            files.extend(
                sorted(
                    found
                    for found in path.rglob("*")
                    if found.is_file()
                    and not any(part.startswith(".") for part in found.relative_to(path).parts)
                    and found.suffix.lower() not in NOT_X12_SUFFIXES
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            raise IngestPathError(f"{given}: not a regular file or folder")
    for file in files:
        if not os.access(file, os.R_OK):
            raise IngestPathError(f"{file}: cannot be read")
    return files


# -- the pipeline ------------------------------------------------------------------------------


def ingest_paths(
    session_factory: SessionFactory,
    paths: Iterable[str | os.PathLike[str]],
    *,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    check_resent: bool = True,
) -> list[IngestResult]:
    """Ingest files and folders in order; raises IngestPathError before doing anything.

    ``check_resent=False`` skips the re-sent interchange rule; public samples reuse ISA13s."""
    files = collect_files(paths)
    return [
        ingest_file(session_factory, f, now=now, batch_size=batch_size, check_resent=check_resent)
        for f in files
    ]


def ingest_file(
    session_factory: SessionFactory,
    path: Path,
    *,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    check_resent: bool = True,
) -> IngestResult:
    at = now or datetime.now(UTC)
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    received = _receive(session_factory, str(path), data, sha256, at)
    if received.status == "loaded":
        log.info("ingest %s: duplicate of source file %s", path.name, received.source_file_id)
        return _stored_result(session_factory, str(path), received, "duplicate")
    try:
        with paused_gc(), session_factory() as session, session.begin():
            _load(session, received, data, at, batch_size, check_resent)
    except _AlreadyLoaded:
        return _stored_result(session_factory, str(path), received, "duplicate")
    except _Quarantine as quarantine:
        _mark_quarantined(session_factory, received, quarantine)
        codes = sorted({str(f["code"]) for f in quarantine.findings if f["severity"] != "info"})
        # Codes only: finding messages may quote claim ids, which must not reach the logs.
        log.warning("ingest %s: quarantined (%s)", path.name, ", ".join(codes))
        return _stored_result(session_factory, str(path), received, "quarantined")
    log.info("ingest %s: loaded as source file %s", path.name, received.source_file_id)
    return _stored_result(session_factory, str(path), received, "loaded")


def _receive(
    session_factory: SessionFactory, name: str, data: bytes, sha256: str, at: datetime
) -> _Received:
    """Transaction 1: keep the bytes and a ``received`` row, committed before any parsing."""
    try:
        with session_factory() as session, session.begin():
            existing = queries.get_source_file_by_sha256(session, sha256)
            if existing is None:
                sender_id, control_number = sniff_interchange(data)
                add_blob_streamed(session, sha256, data)
                existing = queries.add_source_file(
                    session,
                    sha256=sha256,
                    name=name,
                    size=len(data),
                    received_at=at,
                    interchange_control_number=control_number,
                    sender_id=sender_id,
                )
            return _Received(existing.id, existing.status, existing.name)
    except IntegrityError:
        # Another process stored the same bytes between our check and our insert.
        with session_factory() as session:
            other = queries.get_source_file_by_sha256(session, sha256)
            if other is None:
                raise
            return _Received(other.id, other.status, other.name)


def _load(
    session: Session,
    received: _Received,
    data: bytes,
    at: datetime,
    batch_size: int,
    check_resent: bool,
) -> None:
    """Transaction 2: parse and load the whole file, or raise _Quarantine to roll it all back."""
    if queries.lock_source_file(session, received.source_file_id) == "loaded":
        raise _AlreadyLoaded
    queries.delete_file_rows(session, received.source_file_id)
    reader = read_document(io.BytesIO(data), Path(received.name).name)
    conflict = resent_interchange(session, received.source_file_id, data) if check_resent else None
    if conflict is not None:
        for _ in reader:  # read without loading, for the kind and the other findings
            pass
        findings = [finding_dict(f) for f in reader.findings] + [conflict]
        raise _Quarantine(reader.kind.value, findings, conflict["message"])
    loader = BatchLoader(session, received.source_file_id, batch_size)
    item: object = None
    try:
        for item in reader:
            if not reader.has_fatal:  # once fatal, the load is doomed: just read on
                loader.add(item)
        if not reader.has_fatal:
            item = None
            loader.finish()
    except UnstorableValueError as exc:
        findings = [finding_dict(f) for f in reader.findings]
        findings.append(unstorable_finding(exc))
        raise _Quarantine(reader.kind.value, findings, str(exc)) from exc
    except DataError as exc:  # e.g. a NUL byte inside text: PostgreSQL refuses it, every time
        findings = [finding_dict(f) for f in reader.findings]
        findings.append(refused_finding(exc))
        raise _Quarantine(reader.kind.value, findings, "the database refused a value") from exc
    except (SQLAlchemyError, OSError):
        raise  # the database or the disk, not this file: it stays received, for a re-run
    except Exception as exc:  # a bug of ours: it must cost this file, not the whole run
        findings = [*_findings(reader), load_failed_finding(exc, item, received.name)]
        raise _Quarantine(reader.kind.value, findings, findings[-1]["message"]) from exc
    if reader.has_fatal:
        raise _Quarantine(reader.kind.value, _findings(reader), _fatal_summary(reader))
    remittances = DocumentKind.REMITTANCE_835 in reader.kinds
    held = resent_check(session, received.source_file_id) if check_resent and remittances else None
    if held is not None:  # the rows written above roll back with the quarantine
        raise _Quarantine(reader.kind.value, [*_findings(reader), held], held["message"])
    queries.set_file_outcome(
        session,
        received.source_file_id,
        status="loaded",
        kind=reader.kind.value,
        findings=_findings(reader),
        loaded_at=at,
    )


class LoadRefusedError(Exception):
    """``load_kept`` found the file unloadable after all (its findings say why)."""

    def __init__(self, summary: str, findings: list[dict[str, Any]]) -> None:
        super().__init__(summary)
        self.findings = findings


def load_kept(session: Session, source_file_id: int, *, at: datetime) -> str:
    """Load a stored file from its kept bytes inside the caller's transaction, skipping the
    re-sent rule (a person has decided); returns its kind. Raises LoadRefusedError instead of
    quarantining, so the caller's transaction (and its audit row) rolls back as a whole."""
    source = queries.get_source_file(session, source_file_id)
    data = None if source is None else queries.get_blob(session, source.sha256)
    if source is None or data is None:
        raise LoadRefusedError(f"source file {source_file_id} or its bytes are missing", [])
    received = _Received(source.id, source.status, source.name)
    try:
        _load(session, received, bytes(data), at, DEFAULT_BATCH_SIZE, False)
    except _AlreadyLoaded:
        raise LoadRefusedError(f"source file {source_file_id} is already loaded", []) from None
    except _Quarantine as refused:
        raise LoadRefusedError(refused.summary, refused.findings) from None
    session.expire(source)  # set_file_outcome wrote the row with a bulk UPDATE
    return source.kind


def _findings(reader: DocumentReader) -> list[dict[str, Any]]:
    return [finding_dict(f) for f in reader.findings]


def _fatal_summary(reader: DocumentReader) -> str:
    fatal = [f for f in reader.findings if f.severity is Severity.FATAL]
    first = fatal[0]
    return f"{len(fatal)} fatal finding(s); first at segment {first.segment_index}: {first.message}"


def _mark_quarantined(
    session_factory: SessionFactory, received: _Received, quarantine: _Quarantine
) -> None:
    with session_factory() as session, session.begin():
        queries.set_file_outcome(
            session,
            received.source_file_id,
            status="quarantined",
            kind=quarantine.kind,
            findings=quarantine.findings,
            error_summary=quarantine.summary,
        )


def _stored_result(
    session_factory: SessionFactory, file: str, received: _Received, status: str
) -> IngestResult:
    """The result as the store now has it, so the report never disagrees with the tables."""
    with session_factory() as session:
        source = queries.get_source_file(session, received.source_file_id)
        if source is None:  # pragma: no cover - the row was committed in transaction 1
            raise RuntimeError(f"source file {received.source_file_id} vanished")
        totals = queries.file_totals(session, source.id)
        return IngestResult(
            file=file,
            sha256=source.sha256,
            status=status,
            kind=source.kind,
            claims=totals.claims,
            claim_payments=totals.claim_payments,
            paid_total=totals.paid_total,
            claim_statuses=totals.claim_statuses,
            findings=tuple(source.findings),
            source_file_id=source.id,
        )


__all__ = [
    "IngestPathError",
    "IngestResult",
    "LoadRefusedError",
    "collect_files",
    "ingest_file",
    "ingest_paths",
    "load_kept",
    "sniff_interchange",
]
