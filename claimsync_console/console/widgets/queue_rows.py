"""What a queue row looks like: its columns, its cells, and the messages a load posts.

Kept apart from the screen so the screen is about behaviour (paging, marks, keys) and this is
about presentation; both only format what ``ConsoleBackend`` returns.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from rich.text import Text
from textual.message import Message

from claimsync_console.console.widgets import fmt
from claimsync_console.engine.console_backend import ErrorGroup, QueuePage, QueueRow, UsageError

COLUMNS = (
    ("id", "  Item"), ("age", "Age"), ("payer", "Payer"), ("claim", "Claim"),
    ("amount", "Amount"), ("error", "Error"), ("state", "State"),
)  # fmt: skip
GROUP_COLUMNS = (("count", "Items"), ("amount", "Amount"), ("oldest", "Oldest"),
                 ("signature", "Error signature"), ("example", "Example"))  # fmt: skip
ERROR_WIDTH = 58
SORT_WORDS = {
    "age": ("oldest first", "newest first"),
    "payer": ("by payer, A to Z", "by payer, Z to A"),
    "claim": ("by claim, A to Z", "by claim, Z to A"),
    "amount": ("smallest amount first", "largest amount first"),
    "error": ("by error signature, A to Z", "by error signature, Z to A"),
}
ACTION_KEYS = (
    ("m", "remap", "Remap"), ("a", "approve", "Approve"), ("r", "retry", "Retry"),
    ("w", "write_off", "Write off"), ("v", "reverse", "Reverse"), ("i", "ignore", "Ignore"),
)  # fmt: skip


class PageLoaded(Message):
    def __init__(self, seq: int, page: QueuePage, cursor: str) -> None:
        super().__init__()
        self.seq, self.page, self.cursor = seq, page, cursor


class GroupsLoaded(Message):
    def __init__(self, seq: int, groups: list[ErrorGroup]) -> None:
        super().__init__()
        self.seq, self.groups = seq, groups


class LoadFailed(Message):
    def __init__(self, seq: int, error: str) -> None:
        super().__init__()
        self.seq, self.error = seq, error


def row_cells(row: QueueRow, page: QueuePage, marked: bool) -> list[Any]:
    """One item's cells, in COLUMNS order; ages are as of the page's read (the backend's
    clock), so a frozen clock gives the same screen every time. The payer's and the ERP's
    words are ``Text`` (:func:`fmt.plain`): a str cell would be read as markup. A denial whose
    write-off waits for a supervisor says so (``open · approval 63 pending``): it is not work
    for an analyst until the approval is decided."""
    state = row.state.replace("_", " ")
    if row.assigned_to:
        state = f"{state} ({row.assigned_to})"
    if row.pending_approval is not None:
        state = f"{state} · approval {row.pending_approval} pending"
    return [
        Text.assemble(("●" if marked else " ", "bold yellow"), f" {row.id:>6}"),
        fmt.age(page.at - row.created_at),
        fmt.plain(clip(row.payer_name or row.payer_id, 28)),
        fmt.plain(row.claim),
        Text(fmt.money(row.amount), justify="right"),
        fmt.plain(clip(row.error, ERROR_WIDTH)),
        fmt.plain(state),
    ]


def group_cells(group: ErrorGroup, now: datetime) -> list[Any]:
    return [
        Text(fmt.count(group.count), justify="right"),
        Text(fmt.money(group.amount), justify="right"),
        fmt.age_since(group.oldest, now),
        fmt.plain(group.error_signature or "(none)"),
        fmt.plain(clip(group.example, ERROR_WIDTH)),
    ]


def title_line(title: str, summary: str, filter_text: str) -> Text:
    line = Text.assemble((title, "bold"), " · ", summary)
    if filter_text:
        line.append(f" · filter: {filter_text}", style="cyan")
    return line


def status_line(page: QueuePage | None, number: int, size: int, marked: dict[int, Decimal]) -> str:
    """Where the analyst is (page, rows) and what is marked, counted in dollars too."""
    parts = []
    if page is not None:
        first, rows = (number - 1) * size + 1, len(page.rows)
        parts.append(f"page {number} · rows {first:,}-{first + rows - 1:,}" if rows
                     else "no items match")  # fmt: skip
        if page.has_more:
            parts.append("n / j at the bottom for more")
    if marked:
        total = sum(marked.values(), start=Decimal(0))
        parts.append(f"marked {len(marked):,} · {fmt.money(total)}")
    return " · ".join(parts)


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def message_of(error: Exception) -> str:
    """What the analyst reads when a load fails: the engine's own words, else the error's."""
    if isinstance(error, UsageError):
        return error.message
    return f"{error.__class__.__name__}: {error}"
