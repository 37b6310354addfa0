"""A queue filter's free text, looked up in an index instead of read row by row.

Semantics, the same on both backends and the same as before the index existed: the typed text,
as one string, must be contained in at least one searchable field of a work item (claim number,
trace number, payer name, payer id or error), ignoring ASCII case. So a part of a claim number
finds it wherever the part is ("0001234" finds PCN000123457), a word finds every error that
contains it, and "rule 3" finds "rule 3" and "rule 30" but a match never spans two fields. PHI
(patient names, member ids) is not searchable and is not in the index.

The indexes (migration 0006) hold trigrams, so they can only answer text of three characters
or more; shorter text is matched row by row, as before. Both are lossy or superset lookups,
and the exact test (``contains``) is always applied to the rows they return:

* SQLite: the FTS5 table ``work_items_search`` (trigram tokenizer, ``detail=none``) is asked
  for rows holding the text's rarest trigrams (or all of them) and a trigram only the queue's
  kind has (the table also indexes ``kind`` for this; the exact test never looks at it).
* PostgreSQL: ``ILIKE`` on the fields joined by a newline, the very expression of the pg_trgm
  GIN index, so the planner can choose between that index and walking the queue's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, column, func, literal_column, select, table
from sqlalchemy.orm import Session

from claimsync_console.store.models import ClaimRow, Remittance
from claimsync_console.store.models_engine import WORK_ITEM_KINDS, WorkItem

#: The fields free text looks in (and the only ones indexed); never PHI.
TEXT_COLUMNS = ("patient_control_number", "trace_number", "payer_name", "payer_id", "error")
FTS_TABLE = "work_items_search"
MAX_TRIGRAMS = 32
RARE_TRIGRAMS = 4
GRAM_SHARE = 4
_fts = table(FTS_TABLE, column("rowid"))


@dataclass(frozen=True, slots=True)
class Lookup:
    """How the index can answer some text. ``query`` (None: no trigram, too short) offers a
    superset of the matching ids; ``rare`` says it offers at most the cap."""

    query: str | None
    rare: bool


def trigrams(text: str) -> list[str]:
    """The distinct trigrams of ``text`` (the first MAX_TRIGRAMS: plenty to be selective)."""
    return list(dict.fromkeys(text[i : i + 3] for i in range(len(text) - 2)))[:MAX_TRIGRAMS]


def _match(grams: list[str]) -> str:
    return " AND ".join('"' + gram.replace('"', '""') + '"' for gram in grams)


def lookup(session: Session, text: str, cap: int, kind: str | None = None) -> Lookup:
    """Which trigrams to ask for. ANDing trigrams found in nearly every row (``PCN``,
    ``000``) costs far more than it narrows, so each is first counted, up to GRAM_SHARE times
    ``cap`` (a fraction of a millisecond each), and only the rarest few are asked for, with a
    trigram of ``kind``. The text is rare when that offers at most ``cap`` ids; common text is
    best found along the queue's order, which the caller tries before the index's ids."""
    grams = trigrams(text)
    if not grams:
        return Lookup(None, rare=False)
    limit = cap * GRAM_SHARE
    counts = {gram: count_candidates(session, _match([gram]), limit + 1) for gram in grams}
    chosen = sorted((g for g in grams if counts[g] <= limit), key=counts.__getitem__)
    query = _match([*(chosen[:RARE_TRIGRAMS] or grams), *kind_trigram(kind)])
    return Lookup(query, rare=count_candidates(session, query, cap + 1) <= cap)


def kind_trigram(kind: str | None) -> list[str]:
    """A trigram of ``kind`` no other kind has (``d_l`` for dead_letter), if there is one."""
    if kind is None:
        return []
    others = {g for k in WORK_ITEM_KINDS if k != kind for g in trigrams(k)}
    return [g for g in trigrams(kind) if g not in others][:1]


def candidate_ids(query: str) -> Any:
    """SELECT of the ids the FTS index offers for ``query`` (a ``Lookup.query``)."""
    match = literal_column(FTS_TABLE).op("MATCH")(bindparam(None, query))
    return select(_fts.c.rowid).where(match)


def count_candidates(session: Session, query: str, cap: int) -> int:
    """How many ids the index offers, counting no further than ``cap``."""
    inner = candidate_ids(query).limit(cap).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def pg_contains(text: str) -> Any:
    """``text`` contained, any case, in one field: ILIKE on the trigram index's expression.
    The fields are joined by a newline, which a one-line filter never contains."""
    joined: Any = getattr(WorkItem, TEXT_COLUMNS[0])
    for name in TEXT_COLUMNS[1:]:
        joined = joined + literal_column("E'\\n'") + getattr(WorkItem, name)
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return joined.ilike(f"%{escaped}%", escape="/")


def payers_like(session: Session, typed: str, *, limit: int = 10) -> list[tuple[str, str]]:
    """(payer id, payer name) of the payers whose id is ``typed`` or whose name contains it, any
    case, from the remittances and claims on file. The queue shows payer names while its index
    holds ids, so a ``payer:`` filter is turned into ids here, once, and stays an equality."""
    needle = typed.strip()
    found: dict[str, str] = {}
    for model in (Remittance, ClaimRow):
        rows = session.execute(
            select(model.payer_identifier, func.max(model.payer_name))
            .where(
                (func.upper(model.payer_identifier) == needle.upper())
                | func.lower(model.payer_name).contains(needle.lower(), autoescape=True)
            )
            .group_by(model.payer_identifier)
            .limit(limit)
        )
        for payer_id, name in rows:
            found.setdefault(str(payer_id).upper(), str(name))
    exact = {pid: name for pid, name in found.items() if pid == needle.upper()}
    return sorted((exact or found).items())[:limit]
