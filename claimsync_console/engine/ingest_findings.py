"""The fatal findings ingest adds itself, when storing a file fails rather than reading it.

Each becomes one entry of the quarantined file's findings, in the shape of ``finding_dict``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DataError

from claimsync_console.store.rows import UnstorableValueError
from claimsync_console.x12.findings import Severity, code_place

log = logging.getLogger("claimsync_console.engine.ingest")


def unstorable_finding(exc: UnstorableValueError) -> dict[str, Any]:
    return {
        "severity": Severity.FATAL.value,
        "segment_index": exc.segment_index,
        "segment_id": exc.segment_id,
        "code": "unstorable-value",
        "message": str(exc),
    }


def load_failed_finding(exc: Exception, item: object, name: str) -> dict[str, Any]:
    """The finding for a loader bug, at the segment of the object being stored. The log gets
    the place in our code, never the exception's text (it may quote a member id)."""
    names = ("segment_start", "segment_index", "segment_end")
    index = next((i for i in (getattr(item, name, 0) for name in names) if i), 0)
    log.error(
        "ingest %s: storing up to segment %s failed (%s)", Path(name).name, index, code_place(exc)
    )
    return {
        "severity": Severity.FATAL.value,
        "segment_index": index,
        "segment_id": "",
        "code": "load-error",
        "message": f"ClaimSync could not store what this file holds up to segment {index} "
        f"({type(exc).__name__}); the file is kept unloaded: report it with the file",
    }


def refused_finding(exc: DataError) -> dict[str, Any]:
    return {
        "severity": Severity.FATAL.value,
        "segment_index": 0,
        "segment_id": "",
        "code": "database-refused",
        "message": f"the database refused a value from this file: {str(exc.orig).strip()}",
    }
