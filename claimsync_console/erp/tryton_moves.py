"""How a ClaimSync journal entry is written into, and read back from, a Tryton ``account.move``.

Tryton has no idempotency key and no external-reference field on a move, so the key travels in
the move's description as a trailing ``[key]`` (the entry's reference, if any, as ``(ref X)``
before it). Searching uses ``like '%[key]'`` and then an exact comparison here, because ``_`` and
``%`` in a key are LIKE wildcards and would otherwise widen the match. A line's cost centre has
no home without Tryton's analytic module, so it rides in the line description as ``CC | memo``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from claimsync_console.domain.common import CENT
from claimsync_console.domain.journal import JournalEntry, JournalLine
from claimsync_console.erp.base import PostedEntry
from claimsync_console.erp.tryton_rpc import TrytonRpc

REF_PREFIX = "tryton:account.move:"
_REF_PATTERN = re.compile(re.escape(REF_PREFIX) + r"(\d{1,18})")
_DESCRIPTION = re.compile(r"(?s)(?P<text>.*?)(?: \(ref (?P<ref>[^)]*)\))? \[(?P<key>[^\]]*)\]")
MOVE_FIELDS = ["date", "description", "origin", "state", "create_date"]
LINE_FIELDS = ["move", "account.code", "debit", "credit", "description", "origin"]


def move_reference(move_id: int) -> str:
    return f"{REF_PREFIX}{move_id}"


def parse_reference(erp_reference: str) -> int | None:
    match = _REF_PATTERN.fullmatch(erp_reference.strip())
    return int(match.group(1)) if match else None


def origin_of(move_id: int) -> str:
    """The ``origin`` Tryton's cancel wizard writes on the move that cancels ``move_id``."""
    return f"account.move,{move_id}"


def describe(text: str, reference: str, key: str) -> str:
    ref = f" (ref {reference.replace(')', '')})" if reference else ""
    return f"{text}{ref} [{key}]"


def key_pattern(key: str) -> str:
    """A LIKE pattern that matches at least the moves carrying ``key``; backslashes become the
    one-character wildcard because PostgreSQL and SQLite disagree on LIKE's default escape."""
    return "%[" + key.replace("\\", "_") + "]"


def key_of(description: str | None) -> str | None:
    match = _DESCRIPTION.fullmatch(description or "")
    return match.group("key") if match else None


def key_domain(keys: Sequence[str]) -> list[Any]:
    """``['OR', (description like ...), ...]``: one search for a whole batch of keys."""
    clauses: list[Any] = [("description", "like", key_pattern(key)) for key in keys]
    return clauses if len(clauses) == 1 else ["OR", *clauses]


def move_values(
    entry: JournalEntry,
    description: str,
    *,
    company: int,
    journal: int,
    period: int,
    accounts: Mapping[str, int],
) -> dict[str, Any]:
    """``account.move`` create values with the period set explicitly (Tryton would otherwise
    pick one itself, and refuses later when the pick disagrees with the date)."""
    lines = [
        {
            "account": accounts[line.account],
            "debit": line.debit,
            "credit": line.credit,
            "description": _line_text(line),
        }
        for line in entry.lines
    ]
    return {
        "company": company,
        "journal": journal,
        "period": period,
        "date": entry.entry_date,
        "description": description,
        "lines": [("create", lines)],
    }


def _line_text(line: JournalLine) -> str:
    return f"{line.cost_centre} | {line.memo}" if line.cost_centre else line.memo


def _line_from_row(row: Mapping[str, Any]) -> JournalLine:
    text = str(row.get("description") or "")
    centre, sep, memo = text.partition(" | ")
    if not sep:
        centre, memo = "", text
    account = row.get("account.") or {}
    return JournalLine(
        str(account.get("code", "")),
        debit=_money(row.get("debit")),
        credit=_money(row.get("credit")),
        cost_centre=centre,
        memo=memo,
    )


def _money(value: object) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def sides(lines: Iterable[JournalLine]) -> list[tuple[str, Decimal, Decimal]]:
    """What must match for a re-post to be the same posting (free text is left out)."""
    return [(ln.account, ln.debit.quantize(CENT), ln.credit.quantize(CENT)) for ln in lines]


def group_lines(rows: Iterable[Mapping[str, Any]]) -> dict[int, list[JournalLine]]:
    """Line rows grouped by move id, in the order they were written. The cancel wizard copies
    lines in no guaranteed order, but each copy names its original in ``origin``: a reversal's
    lines sort by the original line they mirror."""
    grouped: dict[int, list[tuple[int, JournalLine]]] = {}
    for row in rows:
        origin = str(row.get("origin") or "")
        rank = int(row["id"])
        if origin.startswith("account.move.line,"):
            rank = int(origin.split(",", 1)[1])
        grouped.setdefault(int(row["move"]), []).append((rank, _line_from_row(row)))
    return {
        move: [line for _, line in sorted(lines, key=lambda pair: pair[0])]
        for move, lines in grouped.items()
    }


def posted_entry(
    move: Mapping[str, Any], lines: Sequence[JournalLine], reversed_by: int | None
) -> PostedEntry:
    match = _DESCRIPTION.fullmatch(str(move.get("description") or ""))
    text, ref, key = (
        (match.group("text"), match.group("ref") or "", match.group("key"))
        if match
        else (str(move.get("description") or ""), "", "")
    )
    origin = str(move.get("origin") or "")
    reversal_of = None
    if origin.startswith("account.move,"):
        reversal_of = move_reference(int(origin.split(",", 1)[1]))
    created = move.get("create_date")
    return PostedEntry(
        erp_reference=move_reference(int(move["id"])),
        idempotency_key=key,
        entry_date=move["date"] if isinstance(move.get("date"), date) else date.min,
        description=text,
        reference=ref,
        lines=tuple(lines),
        reversal_of=reversal_of,
        reversed_by=None if reversed_by is None else move_reference(reversed_by),
        created_at=created.replace(tzinfo=UTC) if isinstance(created, datetime) else None,
    )


def read_moves(rpc: TrytonRpc, ctx: dict[str, Any], move_ids: list[int]) -> dict[int, PostedEntry]:
    """Moves with their lines and, where one exists, the move that cancelled them: three
    search_read calls for any number of moves, so reading back a batch costs no more than one."""
    heads = rpc.call(
        "model.account.move.search_read", [("id", "in", move_ids)], 0, None, None, MOVE_FIELDS, ctx
    )
    if not heads:
        return {}
    origins = [origin_of(int(head["id"])) for head in heads]
    children = rpc.call(
        "model.account.move.search_read",
        [("origin", "in", origins)],
        0,
        None,
        [("id", "ASC")],
        ["origin"],
        ctx,
    )
    reversed_by = {str(row["origin"]): int(row["id"]) for row in reversed(children)}
    lines = read_lines(rpc, ctx, [int(head["id"]) for head in heads])
    return {
        int(head["id"]): posted_entry(
            head, lines.get(int(head["id"]), []), reversed_by.get(origin_of(head["id"]))
        )
        for head in heads
    }


def read_lines(rpc: TrytonRpc, ctx: dict[str, Any], move_ids: list[int]) -> dict[int, list[Any]]:
    if not move_ids:
        return {}
    rows = rpc.call(
        "model.account.move.line.search_read",
        [("move", "in", move_ids)],
        0,
        None,
        [("id", "ASC")],
        LINE_FIELDS,
        ctx,
    )
    return dict(group_lines(rows))
