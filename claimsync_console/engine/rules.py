"""Posting rules: the analysts' TOML file that turns remittance codes into ledger accounts.

The file is edited by people, so every validation error names the line to fix
(``posting-rules.toml:12: unknown account '9999' for CO-45``). ``tomllib`` reports lines only
for syntax errors, so for semantic ones the line is found by re-parsing growing prefixes of the
text until the offending key exists (``rules_check.line_index``, with the validator). That uses
``tomllib`` itself, so quoted and dotted keys, headers and inline tables are located exactly, and
it only runs once a file is already known to be wrong. All problems are collected; the raised
error is the first and carries the rest in ``problems``.

Lookups never raise on an unknown code: they return a :class:`MissingRule`, so that the engine
can collect everything one payment lacks into a single ``mapping_error`` item.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

SAMPLE_RULES = "posting-rules.toml"
AUTO = "auto"  # the engine's own role in approval tiers: what it may post unattended
DEFAULT_ROLES = frozenset({AUTO, "analyst", "supervisor"})
APPROVAL_KINDS = ("adjustment", "write_off", "plb")
ANY = "*"
#: A CARC with its group ("CO-45"), or a group fallback ("PR-*").
CARC_PATTERN = re.compile(r"(CO|PR|OA|PI|CR)-([A-Z0-9]{1,5}|\*)")

_TOML_LINE = re.compile(r"at line (\d+)")

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
        group = code.split("-", 1)[0] + f"-{ANY}" if CARC_PATTERN.fullmatch(code) else None
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
    # The checker builds this module's RulesBook, so it imports it: imported here, not at the top.
    from claimsync_console.engine.rules_check import Checker

    checker = Checker(text, source, known_accounts, frozenset(roles))
    book = checker.build(document)
    if checker.problems:
        first = checker.problems[0]
        first.problems = tuple(checker.problems)
        raise first
    return book
