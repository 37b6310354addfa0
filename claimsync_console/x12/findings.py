"""Findings: what a reader says about a file instead of raising.

A reader never throws on bad content; it records a finding with the segment's position so an
analyst can open the file at that segment. ``FATAL`` means the file must not be loaded at all
(it is quarantined with its bytes kept); ``ERROR`` means the data is loaded but flagged.
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass
from typing import Any


def code_place(error: BaseException) -> str:
    """``ValueError at path.py:123 in name``: where in our code a bug struck, for a log line.
    The exception's own text is left out on purpose: it may quote the file (a member id)."""
    where = traceback.extract_tb(error.__traceback__)[-1]
    return f"{type(error).__name__} at {where.filename}:{where.lineno} in {where.name}"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in a file. ``segment_index`` is 1-based, counted from the file's first ISA."""

    severity: Severity
    file: str
    segment_index: int
    segment_id: str
    message: str
    code: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "file": self.file,
            "segment_index": self.segment_index,
            "segment_id": self.segment_id,
            "code": self.code,
            "message": self.message,
        }

    def __str__(self) -> str:
        return (
            f"{self.file}: segment {self.segment_index} ({self.segment_id or '-'}): "
            f"{self.severity.value}: {self.message}"
        )


class X12ParseError(Exception):
    """The only exception a reader lets escape, and only from ``raise_on_fatal`` helpers."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(str(finding))
        self.finding = finding


class FindingSink:
    """Collects findings for one file; readers share it so positions stay consistent."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.findings: list[Finding] = []

    def add(
        self,
        severity: Severity,
        segment_index: int,
        segment_id: str,
        message: str,
        code: str = "",
    ) -> None:
        self.findings.append(
            Finding(severity, self.file_name, segment_index, segment_id, message, code)
        )

    @property
    def has_fatal(self) -> bool:
        return any(f.severity is Severity.FATAL for f in self.findings)

    def first_fatal(self) -> Finding | None:
        return next((f for f in self.findings if f.severity is Severity.FATAL), None)
