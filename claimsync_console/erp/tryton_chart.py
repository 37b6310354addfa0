"""What the Tryton adapter must know about the books before it posts: company, journal,
periods and account ids, looked up once and cached.

Checking accounts and periods here, before creating anything, turns Tryton's generic
``UserError`` into the specific permanent errors the engine reports (unknown account, closed
period), and avoids creating a move that Tryton would refuse to post. The caches refresh on a
miss, so an account or fiscal year added in Tryton is picked up without a restart.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

from claimsync_console.domain.journal import JournalEntry
from claimsync_console.erp.base import ClosedPeriodError, PermanentErpError, UnknownAccountError
from claimsync_console.erp.tryton_rpc import TrytonRpc

_Period = tuple[int, date, date, str]  # id, start, end, state


class TrytonChart:
    """Company, journal, periods and account ids of one Tryton database, for one company."""

    def __init__(self, rpc: TrytonRpc, company: str, journal_code: str) -> None:
        self.rpc = rpc
        self.company_option = company.strip()
        self.journal_code = journal_code
        self.company: int | None = None
        self.journal: int | None = None
        self.accounts: dict[str, int] = {}
        self.periods: list[_Period] = []
        self._lock = threading.Lock()

    def ctx(self) -> dict[str, Any]:
        """The context every model call carries: Tryton scopes records to this company."""
        if self.company is None:
            self.setup()
        return {"company": self.company, "language": "en"}

    def setup(self) -> None:
        """Resolve company, journal and periods once; later calls reuse them."""
        with self._lock:
            if self.company is not None and self.journal is not None:
                return
            company = self._resolve_company()
            journals = self.rpc.call(
                "model.account.journal.search",
                [("code", "=", self.journal_code)],
                0,
                1,
                None,
                {"company": company},
            )
            if not journals:
                raise PermanentErpError(f"Tryton has no journal with code {self.journal_code!r}")
            self.company, self.journal = company, int(journals[0])
        self.load_periods()

    def _resolve_company(self) -> int:
        wanted = self.company_option
        if wanted.isdigit():
            return int(wanted)
        if wanted:
            found = self.rpc.call(
                "model.company.company.search", [("party.name", "=", wanted)], 0, 1, None, {}
            )
            if not found:
                raise PermanentErpError(f"Tryton has no company named {wanted!r}")
            return int(found[0])
        preferences = self.rpc.call("model.res.user.get_preferences", True, {})
        if not preferences.get("company"):
            raise PermanentErpError("the Tryton user has no company; set the 'company' option")
        return int(preferences["company"])

    def load_periods(self) -> None:
        rows = self.rpc.call(
            "model.account.period.search_read",
            [("company", "=", self.company), ("type", "=", "standard")],
            0,
            None,
            [("start_date", "ASC")],
            ["start_date", "end_date", "state"],
            {"company": self.company},
        )
        self.periods = [
            (int(r["id"]), r["start_date"], r["end_date"], str(r["state"])) for r in rows
        ]

    def open_periods(self) -> int:
        return sum(1 for period in self.periods if period[3] == "open")

    def period_for(self, on: date, *, refreshed: bool = False) -> int:
        """The open standard period covering ``on`` (Tryton is told it, never left to guess)."""
        for period_id, start, end, state in self.periods:
            if start <= on <= end:
                if state == "open":
                    return period_id
                if refreshed:
                    raise ClosedPeriodError(f"the Tryton period covering {on} is {state}")
                break
        if not refreshed:  # someone may have opened a year or a period since we looked
            self.load_periods()
            return self.period_for(on, refreshed=True)
        raise ClosedPeriodError(f"no Tryton accounting period covers {on.isoformat()}")

    def load_accounts(self, codes: set[str]) -> None:
        """Fetch ids for the codes not cached yet; view and closed accounts do not count."""
        missing = sorted(codes - set(self.accounts))
        if not missing:
            return
        rows = self.rpc.call(
            "model.account.account.search_read",
            [
                ("code", "in", missing),
                ("company", "=", self.company),
                ("type", "!=", None),
                ("closed", "!=", True),
            ],
            0,
            None,
            None,
            ["code"],
            self.ctx(),
        )
        self.accounts.update({str(row["code"]): int(row["id"]) for row in rows})

    def check_accounts(self, entry: JournalEntry) -> None:
        unknown = sorted({line.account for line in entry.lines} - set(self.accounts))
        if unknown:
            raise UnknownAccountError(
                f"unknown, view or closed Tryton account(s): {', '.join(unknown)}"
            )
