"""Received files, their findings, and releasing a quarantined file (``claimsync files``).

Ingest quarantines a file for two different reasons. A fatal finding (a parse error, a value
the database refuses) means the bytes cannot be loaded, whoever asks: there is nothing to
release, the sender must send a corrected file. A ``resent-interchange`` or ``resent-check``
finding means the bytes load fine but the interchange, or a check in it, looks like one already
loaded, and only a person can tell a corrected re-send from an accidental duplicate. Only that
second kind can be released: the kept bytes are loaded (the rule skipped), the file marked
loaded and an audit row written, all in one transaction, so a failed load leaves neither rows
nor an audit entry behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from claimsync_console.engine.audit_export import iso
from claimsync_console.engine.ingest import LoadRefusedError, load_kept
from claimsync_console.engine.interchange import RESENT_CODE
from claimsync_console.engine.resent_check import RESENT_CHECK_CODE
from claimsync_console.store import queries
from claimsync_console.store import queries_engine as qe
from claimsync_console.store.models import SourceFile

#: Quarantines a person may lift: the bytes are fine, only their being a re-send is in doubt.
RELEASABLE_CODES = frozenset({RESENT_CODE, RESENT_CHECK_CODE})
RELEASE_ACTION = "release_file"


class FileNotFoundInStoreError(Exception):
    """No source file with that id (the CLI exits with 2)."""


class ReleaseRefusedError(Exception):
    """The file cannot be released; ``code`` is the CLI's exit code (2 blocked, 3 not
    quarantined any more, e.g. released already)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Released:
    source_file_id: int
    kind: str
    audit_id: int
    claims: int
    claim_payments: int
    paid_total: str
    claim_statuses: int

    def to_json(self) -> dict[str, Any]:
        return {
            "file_id": self.source_file_id,
            "status": "loaded",
            "kind": self.kind,
            "audit_id": self.audit_id,
            "claims": self.claims,
            "claim_payments": self.claim_payments,
            "paid_total": self.paid_total,
            "claim_statuses": self.claim_statuses,
        }


def _rank(finding: Mapping[str, Any]) -> int:
    """0 fatal, 1 a re-send (interchange or check), 2 an error, 3 anything else."""
    if finding.get("severity") == "fatal":
        return 0
    if finding.get("code") in RELEASABLE_CODES:
        return 1
    return 2 if finding.get("severity") == "error" else 3


def quarantine_reasons(findings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The findings in the order that explains a quarantine: fatal ones, then a re-sent
    interchange, then errors, then the rest, each in file order (in file order alone, a file's
    warnings came first and the few lines printed never named the reason)."""
    return sorted(findings, key=_rank)  # stable: file order within a rank


def first_blocking(findings: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The finding that explains a quarantine: the first fatal one, else the re-sent one, else
    the first error (an error alone never quarantines, but a loaded file may carry one)."""
    first = min(findings, key=_rank, default=None)  # min keeps the earliest of a rank
    return first if first is not None and _rank(first) < 3 else None


def _finding_brief(finding: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if finding is None:
        return None
    return {
        "severity": finding.get("severity"),
        "code": finding.get("code"),
        "message": finding.get("message"),
        "segment_index": finding.get("segment_index"),
    }


def file_summary(source: SourceFile) -> dict[str, Any]:
    """One row of ``files list``."""
    return {
        "id": source.id,
        "name": source.name,
        "kind": source.kind,
        "received_at": iso(source.received_at),
        "status": source.status,
        "finding": _finding_brief(first_blocking(list(source.findings or []))),
    }


def list_files(session: Session, status: str | None) -> list[dict[str, Any]]:
    """Files with this status (None: all), oldest first."""
    return [file_summary(s) for s in queries.list_source_files(session, status=status)]


def release_blocker(source: SourceFile) -> str | None:
    """Why this file cannot be released, or None when it can."""
    findings = list(source.findings or [])
    fatal = [f for f in findings if f.get("severity") == "fatal"]
    if fatal:
        first = fatal[0]
        return (
            f"file {source.id} has the fatal finding {first.get('code')} at segment "
            f"{first.get('segment_index')}: {first.get('message')} (a parse error cannot be "
            "released; the sender must send a corrected file)"
        )
    if not any(f.get("code") in RELEASABLE_CODES for f in findings):
        return (
            f"file {source.id} was not quarantined by {RESENT_CODE} or {RESENT_CHECK_CODE}:"
            " only such files release"
        )
    return None


def file_detail(session: Session, source_file_id: int) -> dict[str, Any]:
    """Everything about one file (``files show``)."""
    source = queries.get_source_file(session, source_file_id)
    if source is None:
        raise FileNotFoundInStoreError(f"no file {source_file_id}")
    totals = queries.file_totals(session, source.id)
    blocker = release_blocker(source) if source.status == "quarantined" else None
    return {
        **file_summary(source),
        "sha256": source.sha256,
        "size": source.size,
        "loaded_at": iso(source.loaded_at),
        "sender_id": source.sender_id,
        "interchange_control_number": source.interchange_control_number,
        "error_summary": source.error_summary,
        "claims": totals.claims,
        "claim_payments": totals.claim_payments,
        "paid_total": str(totals.paid_total),
        "claim_statuses": totals.claim_statuses,
        "releasable": source.status == "quarantined" and blocker is None,
        "release_blocked_by": blocker,
        "findings": [dict(f) for f in source.findings or []],
    }


def release_file(
    session_factory: Callable[[], Session],
    source_file_id: int,
    *,
    operator: str,
    role: str,
    note: str,
    now: datetime | None = None,
) -> Released:
    """Load a file quarantined only as a re-send (``resent-interchange``, ``resent-check``), in
    one transaction with its audit row; refuse anything else (ReleaseRefusedError) with why."""
    if not note.strip():
        raise ReleaseRefusedError("a release needs a --note saying why")
    at = now or datetime.now(UTC)
    with session_factory() as session, session.begin():
        status = queries.lock_source_file(session, source_file_id)  # FOR UPDATE on PostgreSQL
        source = queries.get_source_file(session, source_file_id)
        if status is None or source is None:
            raise FileNotFoundInStoreError(f"no file {source_file_id}")
        if status != "quarantined":
            raise ReleaseRefusedError(
                f"file {source_file_id} is {status}, not quarantined: nothing to release", 3
            )
        blocker = release_blocker(source)
        if blocker is not None:
            raise ReleaseRefusedError(blocker)
        before = {
            "status": status,
            "kind": source.kind,
            "sha256": source.sha256,
            "findings": [dict(f) for f in source.findings or []],
        }
        try:
            kind = load_kept(session, source_file_id, at=at)
        except LoadRefusedError as error:
            raise ReleaseRefusedError(f"file {source_file_id} did not load: {error}") from None
        totals = queries.file_totals(session, source_file_id)
        entry = qe.append_audit(
            session,
            at=at,
            operator=operator,
            role=role,
            action=RELEASE_ACTION,
            work_item_id=None,
            target=f"file:{source_file_id}",
            before=before,
            after={
                "status": "loaded",
                "kind": kind,
                "claims": totals.claims,
                "claim_payments": totals.claim_payments,
                "paid_total": str(totals.paid_total),
                "claim_statuses": totals.claim_statuses,
            },
            reason="",
            note=note.strip(),
        )
        return Released(
            source_file_id=source_file_id,
            kind=kind,
            audit_id=entry.id,
            claims=totals.claims,
            claim_payments=totals.claim_payments,
            paid_total=str(totals.paid_total),
            claim_statuses=totals.claim_statuses,
        )


__all__ = [
    "FileNotFoundInStoreError",
    "ReleaseRefusedError",
    "Released",
    "file_detail",
    "list_files",
    "release_blocker",
    "release_file",
]
