"""Work items: what could not go through on its own and waits for an analyst."""

from __future__ import annotations

import enum


class WorkItemKind(enum.StrEnum):
    UNMATCHED_REMITTANCE = "unmatched_remittance"
    MAPPING_ERROR = "mapping_error"
    DEAD_LETTER = "dead_letter"
    APPROVAL = "approval"
    DENIAL = "denial"
    REJECTED_CLAIM = "rejected_claim"


class WorkItemState(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    WRITTEN_OFF = "written_off"
    IGNORED = "ignored"


TERMINAL_STATES = frozenset(
    {WorkItemState.RESOLVED, WorkItemState.WRITTEN_OFF, WorkItemState.IGNORED}
)
