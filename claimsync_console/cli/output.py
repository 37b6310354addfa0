"""What every reading and acting command shares: parsing durations, instants and amounts, and
printing results as a table, JSON or CSV.

Standard library only at import time: rich is imported when a table is actually printed, so
``claimsync --help`` never pays for it. JSON goes out through :func:`to_json`, which turns
``Decimal`` into a decimal string and datetimes into ISO UTC, so money can never become a float
on the way to a script.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

import typer

from claimsync_console.cli.common import EXIT_USAGE, fail

if TYPE_CHECKING:
    from rich.console import Console

PIPED_WIDTH = 200
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(\d+)\s*([smhdw])")


# -- parsing -----------------------------------------------------------------------------------


def _duration_parts(text: str) -> list[tuple[str, str]] | None:
    compact = text.strip().lower().replace(" ", "")
    parts: list[tuple[str, str]] = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        return None
    return parts


def parse_duration(text: str, option: str = "duration") -> timedelta:
    """``30m``, ``2h``, ``3d``, ``1w``, or several together (``1h30m``); a usage error else."""
    parts = _duration_parts(text)
    if parts is None:
        fail(f"{option}: {text!r} is not a duration like 30m, 2h, 3d or 1w", EXIT_USAGE)
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def parse_instant(text: str, now: datetime, option: str = "--since") -> datetime:
    """A duration back from ``now`` (``2h``), an ISO date (midnight UTC) or an ISO date-time
    (UTC unless it names its offset)."""
    value = text.strip()
    if _duration_parts(value) is not None:
        return now - parse_duration(value, option)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(
            f"{option}: {text!r} is neither a duration (2h, 3d) nor an ISO date or date-time",
            EXIT_USAGE,
        )
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_amount(text: str, option: str = "--amount") -> Decimal:
    """A decimal amount in dollars and cents, by the one rule every typed amount follows
    (``triage_model.parse_dollars``: ``1,00`` is refused, never read as 100)."""
    from claimsync_console.engine.triage_model import UsageError, parse_dollars

    try:
        return parse_dollars(text)
    except UsageError as error:
        fail(f"{option}: {error.message}", EXIT_USAGE)


def output_format(json_output: bool, csv_output: bool) -> str:
    if json_output and csv_output:
        fail("--json and --csv exclude each other", EXIT_USAGE)
    return "json" if json_output else "csv" if csv_output else "table"


# -- printing ----------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, default=_jsonable, ensure_ascii=False)


def emit_json(value: Any) -> None:
    typer.echo(to_json(value))


def emit_json_lines(rows: Iterable[Any], file: IO[str] | None = None) -> int:
    """One compact JSON object per line (streamed); returns how many."""

    def line(row: Any) -> int:
        typer.echo(to_json(row, indent=None), file=file)
        return 1

    return sum(line(row) for row in rows)


def csv_cell(value: Any) -> str:
    """Nested values as compact JSON, None as empty: one row per record, always."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return to_json(value, indent=None)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(_jsonable(value) if isinstance(value, Decimal | datetime | date) else value)


def emit_csv(
    columns: Sequence[str], rows: Iterable[Mapping[str, Any]], file: IO[str] | None = None
) -> int:
    """A header, then each row, streamed (an export of a year is never held in memory), to
    stdout or ``file``; returns how many rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def flush() -> None:
        typer.echo(buffer.getvalue(), nl=False, file=file)
        buffer.seek(0)
        buffer.truncate()

    writer.writerow(columns)
    flush()
    count = 0
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
        flush()
        count += 1
    return count


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    right: Iterable[str] = (),
    caption: str | None = None,
) -> None:
    """Cells are plain text, never rich markup: a payer's ``[unknown_account]`` or a masked
    ``[PHI]`` must print as it is, not vanish as a style tag. Piped into a file or ``grep``
    (no terminal, no ``COLUMNS``), rows get up to 200 columns instead of wrapping at 80."""
    from rich.table import Table
    from rich.text import Text

    aligned = set(right)
    table = Table(title=Text(title), caption=None if caption is None else Text(caption))
    for column in columns:
        table.add_column(Text(column), justify="right" if column in aligned else "left")
    for row in rows:
        table.add_row(*(Text("" if cell is None else printable(str(cell))) for cell in row))
    wide_when_piped().print(table)


#: C0 controls but tab, DEL, and C1 controls (ESC is C0): what a terminal would act on.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character (C0 but tab, DEL, C1) shown as ``\\x1b``.

    Text from a file or an ERP reaches a terminal: an ESC in an 835 segment would otherwise
    retitle the window, move the cursor or hide the lines before it (terminal escape
    injection), and a stray CR would overwrite the reason an analyst needs to read. JSON keeps
    the text as it is (JSON escapes it)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def wide_when_piped(*, stderr: bool = False, **options: Any) -> Console:
    """A rich console that is 80 columns only on an 80-column terminal. Piped into a file or
    ``grep`` (no terminal, no ``COLUMNS``), rich would assume 80 and cut a table's cells to
    ``unexplai…``; there it gets PIPED_WIDTH columns instead, so a script reads whole values."""
    from rich.console import Console

    console = Console(stderr=stderr, **options)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(stderr=stderr, width=PIPED_WIDTH, **options)
    return console


def say(message: str) -> None:
    """A diagnostic (progress, a warning): stderr, so stdout stays the result."""
    typer.echo(message, err=True)


def format_age(seconds: int) -> str:
    """``3d 4h``, ``2h 5m``, ``40s``: the two largest units are what a queue screen needs."""
    if seconds < 60:
        return f"{seconds}s"
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def short_time(value: str | None) -> str:
    """``2026-03-01 12:00:05`` (UTC) for a table cell; JSON and CSV keep the full ISO form."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def money(value: Any) -> str:
    """``1,234.50`` for a table cell (JSON and CSV keep the plain decimal string)."""
    amount = Decimal(str(value))
    return f"{amount:,.2f}"


def shorten(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@contextmanager
def triage_errors() -> Iterator[None]:
    """The triage service's typed errors as a message and their own exit code (2 usage or an
    unknown id, 3 conflict, 4 permission)."""
    from claimsync_console.engine.triage_model import TriageError

    try:
        yield
    except TriageError as error:
        fail(error.message, error.exit_code)
