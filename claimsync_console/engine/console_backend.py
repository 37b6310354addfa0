"""The console's only door to data: the dashboard read model, queue pages, error groups, and
the triage service for actions.

The console runs no SQL and holds no business rule; everything it shows comes from here, and
every call opens and closes its own short session, so the console can call from a worker thread
while the outbox worker writes. ``clock`` is injected so a snapshot test sees fixed ages.
Filters are typed as one line (``payer:ACME 100..500 denied``) and parsed here, so the CLI could
reuse the same little language.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine import status
from claimsync_console.engine.breaker import CLOSED
from claimsync_console.engine.item_detail import (
    QUEUE_OF_KIND,
    QUEUES,
    kind_for_queue,
    resolve_payer,
)
from claimsync_console.engine.rules import RulesBook, RulesError, load_rules
from claimsync_console.engine.runtime import Store, open_store
from claimsync_console.engine.triage import TriageService, UsageError
from claimsync_console.settings import Settings
from claimsync_console.store import queries_queue as qq
from claimsync_console.store import queries_status as qst
from claimsync_console.store.queries_engine import OPEN_STATES
from claimsync_console.store.queries_queue import ErrorGroup, QueueRow

__all__ = [
    "QUEUES",
    "QUEUE_OF_KIND",
    "SORTS",
    "ConsoleBackend",
    "ErrorGroup",
    "QueueFilter",
    "QueuePage",
    "QueueRow",
    "UsageError",
]

SORTS = tuple(qq.SORT_KEYS)  # age, payer, claim, amount, error
COUNT_CAP = 10_000
#: Common free text is counted by reading rows, so its count stops sooner ("1,000+").
TEXT_COUNT_CAP = 1_000
_RANGE = re.compile(r"^\$?(?P<low>\d[\d,]*(?:\.\d+)?)?\.\.\$?(?P<high>\d[\d,]*(?:\.\d+)?)?$")
_BOUND = re.compile(r"^(?P<op>[<>]=?)\$?(?P<value>\d[\d,]*(?:\.\d+)?)$")
CENT = Decimal("0.01")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the analyst typed after ``/``: a payer, an amount range and free text."""

    payer: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    text: str | None = None
    error_signature: str | None = None
    claim: str | None = None  # a claim (patient control) number or its beginning
    #: ``>`` and ``<`` exclude their bound (``..``, ``>=`` and ``<=`` include it). Kept as typed
    #: so that the echo reads as the analyst meant it; :meth:`bounds` turns it into cents.
    min_exclusive: bool = False
    max_exclusive: bool = False

    @property
    def empty(self) -> bool:
        return self == QueueFilter()

    @classmethod
    def parse(cls, line: str) -> QueueFilter:
        """``payer:ID``, ``claim:PCN`` (a claim number or its start), ``100..500``, ``>100``,
        ``<=50``; anything else is free text (contained, any case, in the claim, trace, payer
        or error: see store/queue_search.py). The keyed forms seek an index and free text of
        three characters or more uses the trigram search index. A bad amount is a UsageError
        with a message to show."""
        payer: str | None = None
        claim: str | None = None
        low: Decimal | None = None
        high: Decimal | None = None
        strict = {">": False, "<": False}
        words: list[str] = []
        for token in _tokens(line):
            lowered = token.lower()
            if lowered.startswith("payer:"):
                payer = token[6:].strip('"') or None
            elif lowered.startswith("claim:"):
                claim = token[6:].strip('"') or None
            elif (found := _RANGE.match(token)) and (found["low"] or found["high"]):
                low = _amount(found["low"]) if found["low"] else None
                high = _amount(found["high"]) if found["high"] else None
                strict = {">": False, "<": False}
            elif found := _BOUND.match(token):
                value, side = _amount(found["value"]), found["op"][0]
                strict[side] = found["op"] in (">", "<")
                if side == ">":
                    low = value
                else:
                    high = value
            else:
                words.append(token)
        parsed = cls(
            payer=payer, min_amount=low, max_amount=high, text=" ".join(words) or None,
            claim=claim, min_exclusive=strict[">"] and low is not None,
            max_exclusive=strict["<"] and high is not None,
        )  # fmt: skip
        first, last = parsed.bounds()
        if first is not None and last is not None and first > last:
            raise UsageError(f"amount range {parsed.amounts()} is empty: no amount fits it")
        return parsed

    def bounds(self) -> tuple[Decimal | None, Decimal | None]:
        """The inclusive bounds in cents: amounts are whole cents, so ``> 1000.00`` is
        ``>= 1000.01`` and the store needs only one kind of comparison."""
        low, high = self.min_amount, self.max_amount
        if low is not None and self.min_exclusive:
            low += CENT
        if high is not None and self.max_exclusive:
            high -= CENT
        return low, high

    def amounts(self) -> str:
        """The amount part as it means: ``>1000.00``, ``<=50.00``, ``100.00..500.00``. No space
        after the operator: the queue puts this back in the filter box, where it must parse."""
        low, high = self.min_amount, self.max_amount
        if low is not None and high is not None and not (self.min_exclusive or self.max_exclusive):
            return f"{low}..{high}"
        parts = []
        if low is not None:
            parts.append(f"{'>' if self.min_exclusive else '>='}{low}")
        if high is not None:
            parts.append(f"{'<' if self.max_exclusive else '<='}{high}")
        return " ".join(parts)

    def describe(self) -> str:
        """The filter as the analyst would type it again (shown above the table)."""
        parts = []
        if self.payer:
            parts.append(f'payer:"{self.payer}"' if " " in self.payer else f"payer:{self.payer}")
        if self.claim:
            parts.append(f"claim:{self.claim}")
        if self.min_amount is not None or self.max_amount is not None:
            parts.append(self.amounts())
        if self.error_signature:
            parts.append(f"signature:{self.error_signature[:24]}")
        if self.text:
            parts.append(self.text)
        return " ".join(parts)


def _tokens(line: str) -> list[str]:
    """Words, with double-quoted runs kept together (``payer:"Blue Cross"``)."""
    return [m.group(0) for m in re.finditer(r'\S*"[^"]*"\S*|\S+', line.strip())]


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise UsageError(f"{text!r} is not an amount") from None
    return value.quantize(CENT)


@dataclass(frozen=True, slots=True)
class QueuePage:
    """One screenful. ``first_key``/``last_key`` go back as ``before``/``after``; ``total`` is
    exact below ``COUNT_CAP`` and ``total_capped`` says when it is only a floor."""

    rows: list[QueueRow]
    sort: str
    descending: bool
    has_more: bool
    has_previous: bool
    total: int
    total_capped: bool
    first_key: tuple[Any, ...] | None = None
    last_key: tuple[Any, ...] | None = None
    at: datetime = field(default_factory=utcnow)


class ConsoleBackend:
    """Reads for the console, and the triage service it acts through."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        rules: RulesBook,
        *,
        operator: str,
        role: str,
        clock: Callable[[], datetime] = utcnow,
        store: Store | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.sessions = sessions
        self.rules = rules
        self.settings = settings or Settings()
        self.operator = operator
        self.role = role
        self.clock = clock
        self._store = store
        #: ``payer:`` text -> the payer id it found, so paging and the idle refresh do not
        #: search the remittances and claims for the same name again (a text that found no
        #: payer is not kept: its payer's files may arrive while the console is open)
        self._payer_ids: dict[str, str] = {}
        self.triage = TriageService(sessions, rules, operator=operator, role=role, now_fn=clock)

    @classmethod
    def open(cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> ConsoleBackend:
        """The store at the configured URL (migrated) with the configured rules; raises
        StoreUnavailableError or UsageError with a message for the operator."""
        try:
            rules = load_rules(settings.resolved_rules_path)
        except (RulesError, OSError) as error:
            raise UsageError(f"posting rules: {error}") from error
        store = open_store(settings.resolved_database_url)
        try:
            return cls(
                store.sessions,
                rules,
                operator=settings.resolved_operator,
                role=settings.role,
                clock=clock,
                store=store,
                settings=settings,
            )
        except BaseException:
            store.dispose()
            raise

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()

    def now(self) -> datetime:
        return self.clock()

    # -- reads ---------------------------------------------------------------------------------

    def dashboard(self) -> status.Dashboard:
        with self.sessions() as session:
            return status.dashboard(session, now=self.clock())

    def queue_page(
        self,
        queue: str,
        wanted: QueueFilter | None = None,
        sort: str = "age",
        after_key: tuple[Any, ...] | None = None,
        limit: int = 100,
        *,
        descending: bool = False,
        before_key: tuple[Any, ...] | None = None,
        count: bool = True,
    ) -> QueuePage:
        """One page of ``queue`` (a name from QUEUES) in ``sort`` order, oldest first by
        default; pass ``last_key`` back as ``after_key`` for the next page, ``first_key`` as
        ``before_key`` for the previous one."""
        if sort not in qq.SORT_KEYS:
            raise UsageError(f"unknown sort {sort!r}; expected one of {', '.join(SORTS)}")
        where = self._where(queue, self._payer_resolved(wanted))
        cap = TEXT_COUNT_CAP if where.text else COUNT_CAP
        with self.sessions() as session:
            rows = qq.queue_rows(
                session, where, sort=sort, descending=descending, after=after_key,
                before=before_key, limit=limit + 1,
            )  # fmt: skip
            if before_key is not None:  # we came back from a later page
                more, previous = True, len(rows) > limit
                rows = rows[-limit:]
            else:
                more, previous = len(rows) > limit, after_key is not None
                rows = rows[:limit]
            if not count:
                total = -1
            elif after_key is None and before_key is None and not more:
                total = len(rows)  # the whole queue is on this page: no need to count
            else:
                total = qq.capped_count(session, where, cap + 1)
        return QueuePage(
            rows=rows,
            sort=sort,
            descending=descending,
            has_more=more,
            has_previous=previous,
            total=min(total, cap),
            total_capped=total > cap,
            first_key=rows[0].key(sort) if rows else None,
            last_key=rows[-1].key(sort) if rows else None,
            at=self.clock(),
        )

    def error_groups(self, queue: str, wanted: QueueFilter | None = None) -> list[ErrorGroup]:
        """The queue's open items by error signature, biggest first."""
        with self.sessions() as session:
            return qq.error_groups(session, self._where(queue, self._payer_resolved(wanted)))

    def _payer_resolved(self, wanted: QueueFilter | None) -> QueueFilter | None:
        """``payer:`` takes an id or a piece of a name (the queue shows names), resolved as the
        CLI's ``--payer`` is (``item_detail.resolve_payer``)."""
        if wanted is None or not wanted.payer:
            return wanted
        payer = self._payer_ids.get(wanted.payer)
        if payer is None:
            with self.sessions() as session:
                payer = resolve_payer(session, wanted.payer)  # several: UsageError, not kept
            if payer != wanted.payer:
                self._payer_ids[wanted.payer] = payer
        return replace(wanted, payer=payer)

    def erp_circuits_open(self) -> list[str]:
        """The configured ERP adapter (``settings.erp_adapter``), when its circuit is open: a
        posting queued now waits until it answers again. Only that adapter's breaker counts:
        ``adapter_health`` keeps a row per adapter ever run (an earlier ``sync run`` with the
        REST adapter leaves one), and another adapter's open circuit delays nothing here."""
        adapter = self.settings.erp_adapter
        with self.sessions() as session:
            row = qst.adapter_row(session, adapter)
        return [adapter] if row is not None and row.circuit_state != CLOSED else []

    @staticmethod
    def _where(queue: str, wanted: QueueFilter | None) -> qq.QueueWhere:
        f = wanted or QueueFilter()
        low, high = f.bounds()
        return qq.QueueWhere(
            kind=kind_for_queue(queue),
            states=OPEN_STATES,
            payer=f.payer,
            min_amount=low,
            max_amount=high,
            text=f.text,
            error_signature=f.error_signature,
            claim_prefix=f.claim,
        )
