"""Prepare a Tryton database for ClaimSync: company, chart, fiscal year, periods, accounts.

A fresh trytond database with the account module has none of these, and the adapter refuses
to guess them. This is what the test suite runs against a new database, and what
docs/tryton.md tells a user to run (once, as a Tryton administrator) against their own Tryton,
or to do by hand in the Tryton client. Every step looks before it creates, so running it again
on a prepared database adds only what is missing (a new fiscal year, a new account code).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from claimsync_console.erp.ledger_schema import DEFAULT_CHART, AccountSpec
from claimsync_console.erp.tryton_rpc import TrytonRpc

# ClaimSync's account type -> (Tryton type name, statement, flag on account.account.type).
# No type is receivable/payable: those make Tryton require a party on every line.
_TYPES: dict[str, tuple[str, str, str]] = {
    "asset": ("ClaimSync assets", "balance", "assets"),
    "liability": ("ClaimSync liabilities", "balance", ""),
    "equity": ("ClaimSync equity", "balance", ""),
    "revenue": ("ClaimSync revenue", "income", "revenue"),
    "contra_revenue": ("ClaimSync revenue deductions", "income", "revenue"),
    "expense": ("ClaimSync expenses", "income", "expense"),
}


@dataclass(frozen=True, slots=True)
class TrytonBooks:
    """What the adapter's options need, as the bootstrap found or made it."""

    company_id: int
    company_name: str
    journal_code: str
    accounts_added: int


def bootstrap_books(
    rpc: TrytonRpc,
    *,
    company_name: str = "ClaimSync Hospital",
    currency_code: str = "USD",
    years: Iterable[int] = (),
    accounts: Iterable[AccountSpec] = DEFAULT_CHART,
    journal_code: str = "MISC",
) -> TrytonBooks:
    """Idempotently set up books ClaimSync can post to; ``rpc`` must be an administrator."""
    company_id = _company(rpc, company_name, _currency(rpc, currency_code))
    ctx = {"company": company_id}
    added = _accounts(rpc, ctx, company_id, accounts)
    for year in years:
        _fiscal_year(rpc, ctx, company_id, year)
    if not rpc.call("model.account.journal.search", [("code", "=", journal_code)], 0, 1, None, {}):
        raise ValueError(f"Tryton has no journal with code {journal_code!r}")
    return TrytonBooks(company_id, company_name, journal_code, added)


def _one(rpc: TrytonRpc, model: str, domain: list[Any], ctx: dict[str, Any]) -> int | None:
    found = rpc.call(f"model.{model}.search", domain, 0, 1, None, ctx)
    return int(found[0]) if found else None


def _create(rpc: TrytonRpc, model: str, values: dict[str, Any], ctx: dict[str, Any]) -> int:
    created = rpc.call(f"model.{model}.create", [values], ctx)
    return int(created[0])


def _currency(rpc: TrytonRpc, code: str) -> int:
    found = _one(rpc, "currency.currency", [("code", "=", code)], {})
    if found is not None:
        return found
    values = {
        "name": code,
        "code": code,
        "symbol": "$" if code == "USD" else code,
        "rounding": Decimal("0.01"),
        "digits": 2,
    }
    return _create(rpc, "currency.currency", values, {})


def _company(rpc: TrytonRpc, name: str, currency_id: int) -> int:
    company_id = _one(rpc, "company.company", [("party.name", "=", name)], {})
    if company_id is None:
        party_id = _create(rpc, "party.party", {"name": name}, {})
        company_id = _create(
            rpc, "company.company", {"party": party_id, "currency": currency_id}, {}
        )
    # The administrator must belong to the company to see its accounts and periods.
    uid = rpc.user_id
    rpc.call(
        "model.res.user.write",
        [uid],
        {"companies": [("add", [company_id])], "company": company_id},
        {},
    )
    return company_id


def _accounts(
    rpc: TrytonRpc, ctx: dict[str, Any], company_id: int, accounts: Iterable[AccountSpec]
) -> int:
    wanted = list(accounts)
    codes = [spec.code for spec in wanted]
    existing = rpc.call(
        "model.account.account.search_read",
        [("code", "in", codes), ("company", "=", company_id)],
        0,
        None,
        None,
        ["code"],
        ctx,
    )
    have = {row["code"] for row in existing}
    missing = [spec for spec in wanted if spec.code not in have]
    if not missing:
        return 0
    root = _one(
        rpc, "account.account", [("name", "=", "ClaimSync"), ("type", "=", None)], ctx
    ) or _create(rpc, "account.account", {"name": "ClaimSync", "company": company_id}, ctx)
    type_ids = {kind: _account_type(rpc, ctx, company_id, kind) for kind in _TYPES}
    rows = [
        {
            "name": spec.name,
            "code": spec.code,
            "type": type_ids[spec.type],
            "parent": root,
            "company": company_id,
        }
        for spec in missing
    ]
    rpc.call("model.account.account.create", rows, ctx)
    return len(rows)


def _account_type(rpc: TrytonRpc, ctx: dict[str, Any], company_id: int, kind: str) -> int:
    name, statement, flag = _TYPES[kind]
    found = _one(
        rpc, "account.account.type", [("name", "=", name), ("company", "=", company_id)], ctx
    )
    if found is not None:
        return found
    values: dict[str, Any] = {"name": name, "statement": statement, "company": company_id}
    if flag:
        values[flag] = True
    return _create(rpc, "account.account.type", values, ctx)


def _fiscal_year(rpc: TrytonRpc, ctx: dict[str, Any], company_id: int, year: int) -> None:
    start, end = date(year, 1, 1), date(year, 12, 31)
    overlap = [
        ("company", "=", company_id),
        ("start_date", "<=", end),
        ("end_date", ">=", start),
    ]
    if _one(rpc, "account.fiscalyear", overlap, ctx) is not None:
        return
    sequence_type = _sequence_type(rpc)
    sequence = _create(
        rpc,
        "ir.sequence.strict",
        {"name": f"ClaimSync moves {year}", "sequence_type": sequence_type, "company": company_id},
        ctx,
    )
    fiscal_year = _create(
        rpc,
        "account.fiscalyear",
        {
            "name": str(year),
            "start_date": start,
            "end_date": end,
            "company": company_id,
            "move_sequence": sequence,
        },
        ctx,
    )
    rpc.call("model.account.fiscalyear.create_period", [fiscal_year], ctx)


def _sequence_type(rpc: TrytonRpc) -> int:
    """The account module's "Account Move" sequence type (ir.model.data is not on the RPC)."""
    found = _one(rpc, "ir.sequence.type", [("name", "=", "Account Move")], {"language": "en"})
    if found is None:
        raise ValueError("the Tryton account module is not activated on this database")
    return found
