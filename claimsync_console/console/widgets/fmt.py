"""How numbers read on screen: dollars with separators, ages in the largest sensible unit;
and data shown as it is.

Formatting only; the figures come from the engine as Decimal and aware datetimes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.table import Table
from rich.text import Text

from claimsync_console.domain import dollars

#: Display names of the queues, in the order the dashboard and the jump list show them.
QUEUE_TITLES: dict[str, str] = {
    "unmatched": "Unmatched remittances",
    "dead-letter": "Dead letters",
    "mapping": "Mapping errors",
    "approval": "Approvals",
    "denial": "Denials",
    "rejected": "Rejected claims",
}


def money(amount: Decimal | None) -> str:
    return "-" if amount is None else dollars(amount)


def count(n: int) -> str:
    return f"{n:,}"


def age(delta: timedelta | None) -> str:
    """``45s``, ``12m``, ``5h``, ``3d 4h``, ``41d``: short enough for a narrow column."""
    if delta is None:
        return "-"
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    days = seconds // 86400
    return f"{days}d {seconds % 86400 // 3600}h" if days < 10 else f"{days}d"


def age_since(then: datetime | None, now: datetime) -> str:
    return age(now - then) if then is not None else "-"


def clock(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "never"


def ms(value: int | None) -> str:
    return f"{value} ms" if value is not None else "-"


def plain(value: object, style: str = "") -> Text:
    """Data (a payer's name, a claim number, an ERP's error, a note, an operator) as it is.

    Textual and Rich read a ``str`` handed to a DataTable cell, a Static, a Label or a Rich
    table as markup: a patient control number ``ZZ[/b]9`` raises ``MarkupError`` and takes the
    console down, and ``[unknown_account] unknown account(s)`` loses its first word. A
    ``Text`` is never parsed, so everything that comes from a file, the database, the ERP or
    the operator goes through here (styling, where wanted, is the ``style`` argument).
    """
    return Text("" if value is None else str(value), style=style)


class PlainTable(Table):
    """A Rich table whose ``str`` cells are data, shown as they are (see :func:`plain`)."""

    def add_row(self, *renderables: Any, style: Any = None, end_section: bool = False) -> None:
        cells = [plain(cell) if isinstance(cell, str) else cell for cell in renderables]
        super().add_row(*cells, style=style, end_section=end_section)
