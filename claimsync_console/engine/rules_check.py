"""Validation of a posting-rules document: every problem found, each with the line to fix.

Split from ``engine.rules`` (the model and loading), which calls :class:`Checker` from
``parse_rules``. Lines come from :func:`line_index`, which re-parses growing prefixes of the
text with ``tomllib`` itself, so quoted and dotted keys, headers and inline tables are located
exactly; it only runs once a file is already known to be wrong.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Collection, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from claimsync_console.engine.rules import (
    ANY,
    APPROVAL_KINDS,
    AUTO,
    CARC_PATTERN,
    AdjustmentRule,
    FacilityRule,
    Path_,
    PayerRule,
    RulesBook,
    RulesError,
    Tier,
)

_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_PLB = re.compile(r"[A-Z0-9]{1,3}")
_NAMED = re.compile(r"[a-z][a-z0-9_]{0,39}")
_TOP = ("version", "defaults", "payers", "facilities", "adjustments", "plb", "write_offs",
        "approvals")  # fmt: skip


class Checker:
    """Collects problems with their lines while it builds the book."""

    def __init__(
        self, text: str, source: str, known: Collection[str] | None, roles: frozenset[str]
    ) -> None:
        self.text, self.source, self.roles = text, source, roles
        self.known = frozenset(known) if known is not None else None
        self.problems: list[RulesError] = []
        self._lines: dict[Path_, int] | None = None

    def fail(self, path: Path_, message: str) -> None:
        self.problems.append(RulesError(message, self.line(path), self.source))

    def line(self, path: Path_) -> int | None:
        if self._lines is None:
            self._lines = line_index(self.text)
        while path and path not in self._lines:
            path = path[:-1]
        return self._lines.get(path) if path else None

    # -- the sections ----------------------------------------------------------------------

    def build(self, doc: dict[str, Any]) -> RulesBook:
        for key in doc:
            if key not in _TOP:
                self.fail((key,), f"unknown key {key!r}; expected one of {', '.join(_TOP)}")
        if doc.get("version", 1) != 1:
            self.fail(("version",), f"unsupported version {doc.get('version')!r}; expected 1")
        defaults = self.table(doc, ("defaults",), {"cash_clearing"})
        default_cash = self.account(defaults, ("defaults", "cash_clearing"), "defaults", False)
        book = RulesBook(
            payers=self.payers(doc, default_cash),
            facilities=self.facilities(doc),
            adjustments=self.adjustments(doc),
            plb=self.codes(doc, "plb", _PLB, "a PLB reason such as L6 or WO"),
            write_offs=self.codes(doc, "write_offs", None, "a CARC (CO-45) or a name"),
            approvals=self.approvals(doc),
            source=self.source,
            digest=hashlib.sha256(self.text.encode()).hexdigest(),
        )
        if not book.payers and "payers" not in doc:
            self.fail((), "no [payers.<id>] table: every payment would be a mapping error")
        return book

    def payers(self, doc: dict[str, Any], default_cash: str | None) -> dict[str, PayerRule]:
        found: dict[str, PayerRule] = {}
        keys = {"name", "receivable", "cash_clearing", "aliases"}
        for payer_id, body in self.table(doc, ("payers",)).items():
            at = ("payers", payer_id)
            body = self.table(doc["payers"], at, keys)
            receivable = self.account(body, (*at, "receivable"), f"payer {payer_id}")
            cash = self.account(body, (*at, "cash_clearing"), f"payer {payer_id}", False)
            if cash is None and default_cash is None:
                self.fail(at, f"payer {payer_id} has no cash_clearing and [defaults] has none")
            rule = PayerRule(
                payer_id,
                self.text_value(body, (*at, "name")),
                receivable or "",
                cash or default_cash or "",
                self.aliases(body, at),
            )
            self.register(found, rule, (payer_id, *rule.aliases), at, "payer")
        return found

    def facilities(self, doc: dict[str, Any]) -> dict[str, FacilityRule]:
        found: dict[str, FacilityRule] = {}
        for identifier, _ in self.table(doc, ("facilities",)).items():
            at = ("facilities", identifier)
            body = self.table(doc["facilities"], at, {"name", "cost_centre", "aliases"})
            centre = self.text_value(body, (*at, "cost_centre"), required=True)
            if centre and not _ACCOUNT.fullmatch(centre):
                self.fail((*at, "cost_centre"), f"cost centre {centre!r} is not a code")
            rule = FacilityRule(
                identifier, self.text_value(body, (*at, "name")), centre, self.aliases(body, at)
            )
            self.register(found, rule, (identifier, *rule.aliases), at, "facility")
        return found

    def adjustments(self, doc: dict[str, Any]) -> dict[str, AdjustmentRule]:
        found: dict[str, AdjustmentRule] = {}
        for code, value in self.table(doc, ("adjustments",)).items():
            at = ("adjustments", code)
            if not CARC_PATTERN.fullmatch(code):
                self.fail(at, f"{code!r} is not GROUP-REASON (CO-45) or a group fallback (CO-*)")
            keys = {"account", "denial", "description"}
            if isinstance(value, dict):
                body = self.table(doc["adjustments"], at, keys)
            else:  # the short form, "CO-45" = "4100"; a non-string fails as an account
                body = {"account": value}
            denial = body.get("denial", False)
            if not isinstance(denial, bool):
                self.fail((*at, "denial"), f"denial for {code} must be true or false")
            account = self.account(body, (*at, "account"), code, required=not denial)
            if denial and account is not None:
                self.fail((*at, "account"), f"{code} is a denial: its write-off picks the account")
            description = self.text_value(body, (*at, "description"))
            found[code] = AdjustmentRule(code, account, denial is True, description)
        return found

    def codes(
        self, doc: dict[str, Any], section: str, shape: re.Pattern[str] | None, what: str
    ) -> dict[str, str]:
        found: dict[str, str] = {}
        for code in self.table(doc, (section,)):
            at = (section, code)
            named = CARC_PATTERN.fullmatch(code) or _NAMED.fullmatch(code)
            ok = shape.fullmatch(code) if shape else named
            if not ok:
                self.fail(at, f"{code!r} is not {what}")
            account = self.account(doc[section], at, f"{section} {code}")
            if account is not None:
                found[code] = account
        return found

    def approvals(self, doc: dict[str, Any]) -> dict[tuple[str, str], tuple[Tier, ...]]:
        found: dict[tuple[str, str], tuple[Tier, ...]] = {}
        for kind in self.table(doc, ("approvals",)):
            if kind not in APPROVAL_KINDS:
                self.fail(("approvals", kind), f"approvals.{kind}: expected {APPROVAL_KINDS}")
                continue
            for code in self.table(doc["approvals"], ("approvals", kind)):
                at = ("approvals", kind, code)
                if not _approval_code(kind, code):
                    self.fail(at, f"{code!r} is not a {kind} reason (or '*')")
                body = self.table(doc["approvals"][kind], at, {"tiers"})
                found[(kind, code)] = self.tiers(body.get("tiers"), (*at, "tiers"))
        return found

    def tiers(self, raw: object, at: Path_) -> tuple[Tier, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail(at, "tiers must be a non-empty list of { role = ..., max_amount = ... }")
            return ()
        tiers: list[Tier] = []
        for index, item in enumerate(raw):
            where = (*at, index)
            body = item if isinstance(item, dict) else {}
            if not isinstance(item, dict) or set(item) - {"role", "max_amount"}:
                self.fail(where, 'a tier is { role = "...", max_amount = "..." }')
            role = body.get("role")
            if not isinstance(role, str) or role not in self.roles:
                self.fail(where, f"unknown role {role!r}; expected one of {sorted(self.roles)}")
            limit = self.money(body.get("max_amount"), (*where, "max_amount"))
            if limit is None and index != len(raw) - 1:
                self.fail(where, "only the last tier may omit max_amount (no limit)")
            previous = tiers[-1].max_amount if tiers else None
            if tiers and previous is not None and limit is not None and limit <= previous:
                self.fail(where, f"tiers must rise: {limit} is not above {previous}")
            if role == AUTO and index:
                self.fail(where, f"{AUTO!r} (the engine) can only be the first tier")
            if any(t.role == role for t in tiers):
                self.fail(where, f"role {role!r} appears twice")
            tiers.append(Tier(str(role), limit))
        if all(t.role == AUTO for t in tiers):
            self.fail(at, f"tiers need a role other than {AUTO!r}: the engine cannot approve")
        return tuple(tiers)

    # -- values ----------------------------------------------------------------------------

    def table(
        self, parent: Mapping[str, Any], at: Path_, allowed: set[str] | None = None
    ) -> dict[str, Any]:
        value = parent.get(str(at[-1]), {})
        name = ".".join(map(str, at))
        if not isinstance(value, dict):
            self.fail(at, f"{name} must be a table")
            return {}
        for key in sorted(set(value) - allowed) if allowed is not None else ():
            self.fail((*at, key), f"unknown key {key!r} in {name}")
        return value

    def account(
        self, body: Mapping[str, Any], at: Path_, owner: str, required: bool = True
    ) -> str | None:
        value = body.get(str(at[-1]))
        if value is None:
            if required:
                self.fail(at[:-1], f"{owner}: {at[-1]} is required")
            return None
        if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
            self.fail(at, f"{value!r} is not an account code, for {owner}")
            return None
        if self.known is not None and value not in self.known:
            self.fail(at, f"unknown account {value!r} for {owner}")
            return None
        return value

    def text_value(self, body: Mapping[str, Any], at: Path_, required: bool = False) -> str:
        value = body.get(str(at[-1]))
        if value is None and required:
            self.fail(at[:-1], f"{at[-1]} is required")
        elif value is not None and not isinstance(value, str):
            self.fail(at, f"{at[-1]} must be a string")
        return value if isinstance(value, str) else ""

    def aliases(self, body: Mapping[str, Any], at: Path_) -> tuple[str, ...]:
        value = body.get("aliases", [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail((*at, "aliases"), "aliases must be a list of non-empty strings")
            return ()
        return tuple(value)

    def money(self, value: object, at: Path_) -> Decimal | None:
        """Strings or integers only: a TOML float would already have lost the cents."""
        if value is None:
            return None
        if isinstance(value, float):
            self.fail(at, f'{value!r} is a float; write money as a string, e.g. "500.00"')
            return None
        try:
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise InvalidOperation
            amount = Decimal(value)
        except InvalidOperation:
            self.fail(at, f"{value!r} is not an amount")
            return None
        if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
            self.fail(at, f"{value!r} must be a non-negative amount in whole cents")
            return None
        return amount.quantize(Decimal("0.01"))

    def register(
        self, found: dict[str, Any], rule: object, keys: tuple[str, ...], at: Path_, kind: str
    ) -> None:
        for key in keys:
            if key in found and found[key] is not rule:
                self.fail(at, f"{kind} identifier {key!r} is already used by another {kind}")
            found[key] = rule


def _approval_code(kind: str, code: str) -> bool:
    if code == ANY:
        return True
    if kind == "plb":
        return bool(_PLB.fullmatch(code))
    named = kind == "write_off" and _NAMED.fullmatch(code)
    return bool(CARC_PATTERN.fullmatch(code) or named)


# --------------------------------------------------------------------------- line finding


def line_index(text: str) -> dict[Path_, int]:
    """The first line at which each key path exists, found by parsing growing prefixes. An
    unfinished multi-line array is closed on trial (TOML allows a trailing comma), so an
    element gets its own line rather than the line of the closing bracket."""
    index: dict[Path_, int] = {}
    prefix = ""
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        prefix += line if line.endswith("\n") else line + "\n"
        for closing in ("", "]\n", "]]\n", "]]]\n"):
            try:
                document = tomllib.loads(prefix + closing)
            except tomllib.TOMLDecodeError:
                continue
            for path in _paths(document, ()):
                index.setdefault(path, number)
            break
    return index


def _paths(value: object, path: Path_) -> Iterator[Path_]:
    if path:
        yield path
    children: Iterable[tuple[str | int, object]] = ()
    if isinstance(value, dict):
        children = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    for key, child in children:
        yield from _paths(child, (*path, key))
