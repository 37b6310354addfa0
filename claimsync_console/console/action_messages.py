"""What the console says after an action: an error as a sentence, a bulk run's tally, a
service message with its amounts as dollars, the ERP-down note.

Kept apart from the runner (``actions.py``) so that the dialogs, which make some service calls
themselves (the remap dialog shows a refusal in place), say errors in the same words.
"""

from __future__ import annotations

from claimsync_console.engine.triage_model import (
    BulkResult,
    ConflictError,
    InvalidTransitionError,
    PermissionDeniedError,
    TriageError,
    UnresolvedError,
)

#: What a write-off over the operator's limit returns instead of ``write_off``: nothing posted,
#: an approval item opened for a supervisor (``related_item_id``).
REQUESTED = "write_off_requested"


class Failed:
    """An error a thread worker caught, to be said on the UI side."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def describe_error(action: str, error: BaseException) -> tuple[str, str]:
    """(message, severity) for an error: what happened and what the operator can do."""
    verb = action.replace("_", " ")
    if isinstance(error, ConflictError):
        return f"Conflict: {error.message}", "warning"
    if isinstance(error, PermissionDeniedError):
        return f"Not allowed: {error.message}", "error"
    if isinstance(error, InvalidTransitionError | UnresolvedError):
        return f"Cannot {verb}: {error.message}", "warning"
    if isinstance(error, TriageError):
        return f"{verb.capitalize()}: {error.message}", "warning"
    if _from_the_store(error):
        return (
            f"{verb.capitalize()} failed: the database did not answer ({type(error).__name__})."
            " Nothing was changed; try again.",
            "error",
        )
    return (
        f"{verb.capitalize()} failed unexpectedly ({type(error).__name__}); nothing is known"
        " to have changed: reload the item. The log has the details.",
        "error",
    )


def _from_the_store(error: BaseException) -> bool:
    """A database or connection error (the console cannot import SQLAlchemy to name it). Its
    text is not shown: a driver's message may quote the SQL and its values."""
    module = type(error).__module__
    return (
        module.startswith(("sqlalchemy", "psycopg", "sqlite3"))
        or isinstance(error, OSError)
        or type(error).__name__ == "StoreUnavailableError"
    )


def bulk_summary(action: str, done: BulkResult) -> tuple[str, str]:
    """(text, severity) of a bulk run: how many were done, how many went to a supervisor for
    approval instead (a write-off over the limit posts nothing yet: the approval items are
    named, so the analyst can follow them), how many failed and why (the first three)."""
    verb = action.replace("_", " ")
    results = [o.result for o in done.outcomes if o.result is not None]
    sent = [r for r in results if r.action == REQUESTED]
    text = f"{verb.capitalize()}: {done.succeeded - len(sent)} done"
    if sent:
        approvals = ", ".join(str(r.related_item_id) for r in sent[:5])
        more = f" and {len(sent) - 5} more" if len(sent) > 5 else ""
        noun = "item" if len(sent) == 1 else "items"
        text += f", {len(sent)} sent for approval (approval {noun} {approvals}{more})"
    text += f", {done.failed} failed"
    failures = [o for o in done.outcomes if not o.ok][:3]
    text += "".join(f"\n• item {o.item_id}: {o.error}" for o in failures)
    if done.failed > len(failures):
        text += f"\n• and {done.failed - len(failures)} more"
    return text, "warning" if done.failed or sent else "information"


def erp_note(down: list[str]) -> str:
    if not down:
        return ""
    return (
        f"\nThe ERP is down ({', '.join(down)} circuit open): the posting waits in the outbox"
        " and goes through when the ERP answers again."
    )
