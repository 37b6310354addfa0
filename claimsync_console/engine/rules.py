"""Posting rules: the analysts' TOML file that turns remittance codes into ledger accounts.

The file is edited by people, so every validation error names the line to fix
(``posting-rules.toml:12: unknown account '9999' for CO-45``). ``tomllib`` reports lines only
for syntax errors, so for semantic ones the line is found by re-parsing growing prefixes of the
text until the offending key exists (:func:`_line_index`). That uses ``tomllib`` itself, so quoted
and dotted keys, headers and inline tables are located exactly, and it only runs once a file is
already known to be wrong. All problems are collected; the raised error is the first and carries
the rest in ``problems``.

Lookups never raise on an unknown code: they return a :class:`MissingRule`, so that the engine
can collect everything one payment lacks into a single ``mapping_error`` item.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

SAMPLE_RULES = "posting-rules.toml"
AUTO = "auto"  # the engine's own role in approval tiers: what it may post unattended
DEFAULT_ROLES = frozenset({AUTO, "analyst", "supervisor"})
APPROVAL_KINDS = ("adjustment", "write_off", "plb")
ANY = "*"

_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_CARC = re.compile(r"(CO|PR|OA|PI|CR)-([A-Z0-9]{1,5}|\*)")
_PLB = re.compile(r"[A-Z0-9]{1,3}")
_NAMED = re.compile(r"[a-z][a-z0-9_]{0,39}")
_TOML_LINE = re.compile(r"at line (\d+)")
_TOP = ("version", "defaults", "payers", "facilities", "adjustments", "plb", "write_offs",
        "approvals")  # fmt: skip

Path_ = tuple[str | int, ...]


class RulesError(ValueError):
    """A rules file that cannot be used; ``problems`` lists every problem found, this first."""

    def __init__(self, message: str, line: int | None = None, path: str | Path = "") -> None:
        super().__init__(message)
        self.message, self.line, self.path = message, line, str(path)
        self.problems: tuple[RulesError, ...] = (self,)

    def __str__(self) -> str:
        where = Path(self.path).name if self.path else "<rules>"
        return f"{where}:{self.line}: {self.message}" if self.line else f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class MissingRule:
    """What a payment needs and the rules lack; ``kind`` is payer/carc/facility/plb/write_off."""

    kind: str
    key: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"no {self.kind} rule for {self.key!r}{extra}"


@dataclass(frozen=True, slots=True)
class PayerRule:
    payer_id: str
    name: str
    receivable: str
    cash_clearing: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FacilityRule:
    identifier: str
    name: str
    cost_centre: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AdjustmentRule:
    """``denial`` codes post nothing: their amount stays on the payer receivable for a denial
    item, so that an appealable denial is never written off behind the analysts' backs."""

    code: str
    account: str | None
    denial: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Tier:
    """A role may approve up to ``max_amount`` (None: no limit)."""

    role: str
    max_amount: Decimal | None


@dataclass(frozen=True)
class RulesBook:
    """The validated rules. The mappings are read-only by convention; build a new book to
    change them (reprocessing then picks it up)."""

    payers: Mapping[str, PayerRule]
    facilities: Mapping[str, FacilityRule]
    adjustments: Mapping[str, AdjustmentRule]
    plb: Mapping[str, str]
    write_offs: Mapping[str, str]
    approvals: Mapping[tuple[str, str], tuple[Tier, ...]]
    source: str = ""
    digest: str = ""  # sha256 of the text: which rules version produced a posting

    def payer(self, *identifiers: str) -> PayerRule | MissingRule:
        """The first identifier that is a payer id or alias wins (N1*PR/REF*2U, then TRN03)."""
        return _first(self.payers, identifiers, "payer")

    def facility(self, *identifiers: str) -> FacilityRule | MissingRule:
        """Keyed by the payee's identifier (N1*PE, the billing NPI) or an alias."""
        return _first(self.facilities, identifiers, "facility")

    def receivable_account(self, payer_id: str) -> str | MissingRule:
        rule = self.payer(payer_id)
        return rule.receivable if isinstance(rule, PayerRule) else rule

    def cash_account(self, payer_id: str) -> str | MissingRule:
        rule = self.payer(payer_id)
        return rule.cash_clearing if isinstance(rule, PayerRule) else rule

    def cost_centre(self, facility_id: str) -> str | MissingRule:
        rule = self.facility(facility_id)
        return rule.cost_centre if isinstance(rule, FacilityRule) else rule

    def adjustment(self, group: str, reason: str) -> AdjustmentRule | MissingRule:
        """Exact ``CO-45`` first, then a declared group fallback ``CO-*``."""
        code = f"{group}-{reason}"
        rule = self.adjustments.get(code) or self.adjustments.get(f"{group}-{ANY}")
        return rule if rule is not None else MissingRule("carc", code)

    def plb_account(self, reason: str) -> str | MissingRule:
        return self.plb.get(reason) or MissingRule("plb", reason)

    def write_off_account(self, reason: str) -> str | MissingRule:
        return self.write_offs.get(reason) or MissingRule("write_off", reason)

    def tiers(self, kind: str, code: str) -> tuple[Tier, ...]:
        """Exact code, then its group fallback (``CO-*``), then the kind's ``*``; () = no limit."""
        group = code.split("-", 1)[0] + f"-{ANY}" if _CARC.fullmatch(code) else None
        for key in (code, group, ANY):
            if key is not None and (kind, key) in self.approvals:
                return self.approvals[(kind, key)]
        return ()

    def accounts(self) -> frozenset[str]:
        """Every account the rules can post to, e.g. to check them against an ERP's chart."""
        found = {a for p in self.payers.values() for a in (p.receivable, p.cash_clearing)}
        found |= {a.account for a in self.adjustments.values() if a.account}
        return frozenset(found | set(self.plb.values()) | set(self.write_offs.values()))


def _first(table: Mapping[str, Any], identifiers: tuple[str, ...], kind: str) -> Any:
    for identifier in identifiers:
        if identifier and identifier in table:
            return table[identifier]
    shown = next((i for i in identifiers if i), "")
    return MissingRule(kind, shown)


# --------------------------------------------------------------------------- loading


def sample_rules_path() -> Path:
    """The packaged sample file the demo uses."""
    return Path(str(resources.files("claimsync_console") / "sample_rules" / SAMPLE_RULES))


def load_rules(
    path: str | Path,
    *,
    known_accounts: Collection[str] | None = None,
    roles: Collection[str] = DEFAULT_ROLES,
) -> RulesBook:
    """Read and validate a rules file; raises :class:`RulesError` naming the offending line."""
    text = Path(path).read_text(encoding="utf-8")
    return parse_rules(text, source=str(path), known_accounts=known_accounts, roles=roles)


def parse_rules(
    text: str,
    *,
    source: str = SAMPLE_RULES,
    known_accounts: Collection[str] | None = None,
    roles: Collection[str] = DEFAULT_ROLES,
) -> RulesBook:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_LINE.search(str(exc))
        raise RulesError(
            f"not valid TOML: {exc}", int(match[1]) if match else None, source
        ) from None
    checker = _Checker(text, source, known_accounts, frozenset(roles))
    book = checker.build(document)
    if checker.problems:
        first = checker.problems[0]
        first.problems = tuple(checker.problems)
        raise first
    return book


class _Checker:
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
            self._lines = _line_index(self.text)
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
            if not _CARC.fullmatch(code):
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
            ok = shape.fullmatch(code) if shape else _CARC.fullmatch(code) or _NAMED.fullmatch(code)
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
    return bool(_CARC.fullmatch(code) or named)


# --------------------------------------------------------------------------- line finding


def _line_index(text: str) -> dict[Path_, int]:
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
