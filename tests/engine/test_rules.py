"""Posting rules: the shipped sample file, lookups, and errors that name the line to fix.

Expected line numbers are found by searching the test's own text for the offending line, not
by asking the code under test."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from claimsync_console.domain import ClaimPayment, RemittanceHeader, RemittanceTrailer
from claimsync_console.engine.rules import (
    AdjustmentRule,
    FacilityRule,
    MissingRule,
    PayerRule,
    RulesBook,
    RulesError,
    Tier,
    load_rules,
    parse_rules,
    sample_rules_path,
)
from claimsync_console.erp.ledger_schema import DEFAULT_CHART
from claimsync_console.x12.document import read_document

CHART = frozenset(spec.code for spec in DEFAULT_CHART)
SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"

GOOD = """\
version = 1

[defaults]
cash_clearing = "1010"

[payers.SMPMB]
name = "Medicare"
receivable = "1210"
aliases = ["1000000001"]

[facilities."1234567893"]
cost_centre = "CC100"

[adjustments]
"CO-45" = "4100"
"PR-*" = { account = "1300", description = "patient" }
"CO-50" = { denial = true }

[plb]
L6 = "7100"

[write_offs]
"CO-50" = "4150"
small_balance = "4150"

[approvals.write_off."*"]
tiers = [
  { role = "analyst", max_amount = "500.00" },
  { role = "supervisor", max_amount = 10000 },
]
"""


def read_sample_835s() -> list[tuple[RemittanceHeader, list[ClaimPayment], RemittanceTrailer]]:
    """Every transaction of every sample 835, as (header, claim payments, trailer)."""
    found = []
    for path in sorted((SAMPLE_DATA / "835").glob("*.x12")):
        payments: list[ClaimPayment] = []
        for item in read_document(path.read_bytes(), path.name):
            if isinstance(item, RemittanceHeader):
                header, payments = item, []
            elif isinstance(item, ClaimPayment):
                payments.append(item)
            elif isinstance(item, RemittanceTrailer):
                found.append((header, payments, item))
    return found


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def error_for(text: str) -> RulesError:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, known_accounts=CHART)
    return caught.value


# --------------------------------------------------------------------------- the sample file


@pytest.fixture(scope="module")
def sample() -> RulesBook:
    return load_rules(sample_rules_path(), known_accounts=CHART)


def test_sample_file_is_packaged_and_valid_against_the_default_chart(sample: RulesBook) -> None:
    path = sample_rules_path()
    assert path.name == "posting-rules.toml" and path.is_file()
    assert sample.accounts() <= CHART
    assert len(sample.digest) == 64


def test_sample_file_maps_every_generated_payer_and_facility(sample: RulesBook) -> None:
    headers = [h for h, _, _ in read_sample_835s()]
    manifest = json.loads((SAMPLE_DATA / "manifest.json").read_text())
    assert {h.payer.identifier for h in headers} == {c["payer_id"] for c in manifest["checks"]}
    assert len({h.payer.identifier for h in headers}) == 5
    for header in headers:
        payer = sample.payer(header.payer.identifier)
        assert isinstance(payer, PayerRule) and payer.receivable.startswith("12")
        assert sample.payer(header.originator_id) is payer  # TRN03, for 835s without REF*2U
        facility = sample.facility(header.payee.identifier)
        assert isinstance(facility, FacilityRule) and facility.cost_centre
    assert len({h.payee.identifier for h in headers}) >= 4


def test_sample_file_maps_every_generated_carc_and_plb_but_the_planted_ones(
    sample: RulesBook,
) -> None:
    text = "".join(p.read_text() for p in sorted((SAMPLE_DATA / "835").glob("*.x12")))
    codes = set()
    for segment in re.findall(r"CAS\*([^~]*)", text):
        group, *rest = segment.split("*")
        codes |= {f"{group}-{rest[i]}" for i in range(0, len(rest), 3) if rest[i]}
    plb = {m for m in re.findall(r"PLB\*[^*]*\*[^*]*\*([A-Z0-9]+):", text)}
    planted = set(json.loads((SAMPLE_DATA / "manifest.json").read_text())["unusual_carcs"])
    assert planted == {"CO-B7", "OA-121"} and planted <= codes
    for code in codes:
        group, reason = code.split("-")
        rule = sample.adjustment(group, reason)
        if code in planted:
            assert rule == MissingRule("carc", code)
        else:
            assert isinstance(rule, AdjustmentRule), code
    assert plb == {"L6", "WO", "FB"}
    for reason in plb:
        assert sample.plb_account(reason) in CHART


# --------------------------------------------------------------------------- lookups


def test_lookups_exact_then_group_fallback_then_missing() -> None:
    book = parse_rules(GOOD, known_accounts=CHART)
    assert book.adjustment("CO", "45") == AdjustmentRule("CO-45", "4100")
    assert book.adjustment("PR", "96") == AdjustmentRule("PR-*", "1300", False, "patient")
    assert book.adjustment("CO", "50") == AdjustmentRule("CO-50", None, True)
    assert book.adjustment("CO", "97") == MissingRule("carc", "CO-97")
    assert book.receivable_account("SMPMB") == "1210"
    assert book.cash_account("1000000001") == "1010"
    assert book.receivable_account("SMPXX") == MissingRule("payer", "SMPXX")
    assert book.cost_centre("1234567893") == "CC100"
    assert book.cost_centre("999") == MissingRule("facility", "999")
    assert book.plb_account("L6") == "7100"
    assert book.plb_account("WO") == MissingRule("plb", "WO")
    assert book.write_off_account("small_balance") == "4150"
    assert book.write_off_account("bad_debt") == MissingRule("write_off", "bad_debt")
    assert book.payer("", "1000000001") == book.payer("SMPMB")
    tiers = book.tiers("write_off", "CO-50")
    assert tiers == (Tier("analyst", Decimal("500.00")), Tier("supervisor", Decimal("10000.00")))
    assert book.tiers("adjustment", "CO-45") == ()


def test_tier_lookup_prefers_the_exact_code_then_the_group_then_star() -> None:
    text = (
        GOOD
        + """
[approvals.write_off."CO-*"]
tiers = [{ role = "supervisor" }]

[approvals.write_off."CO-50"]
tiers = [{ role = "analyst", max_amount = "1.00" }, { role = "supervisor" }]
"""
    )
    book = parse_rules(text, known_accounts=CHART)
    assert book.tiers("write_off", "CO-50")[0] == Tier("analyst", Decimal("1.00"))
    assert book.tiers("write_off", "CO-29") == (Tier("supervisor", None),)
    assert book.tiers("write_off", "small_balance")[1].max_amount == Decimal("10000.00")


# --------------------------------------------------------------------------- errors name lines


def test_unknown_account_names_the_line_in_compiler_style() -> None:
    text = GOOD.replace('"CO-45" = "4100"', '"CO-45" = "9999"')
    error = error_for(text)
    line = line_of(text, '"CO-45" = "9999"')
    assert (error.line, error.message) == (line, "unknown account '9999' for CO-45")
    assert str(error) == f"posting-rules.toml:{line}: unknown account '9999' for CO-45"


def test_load_rules_names_the_file_it_read(tmp_path: Path) -> None:
    path = tmp_path / "site-rules.toml"
    path.write_text(GOOD.replace('L6 = "7100"', 'L6 = "7199"'))
    with pytest.raises(RulesError) as caught:
        load_rules(path, known_accounts=CHART)
    line = line_of(path.read_text(), 'L6 = "7199"')
    assert str(caught.value) == f"site-rules.toml:{line}: unknown account '7199' for plb L6"
    assert caught.value.path == str(path)


def test_a_float_in_a_multi_line_tier_list_names_that_tier_line() -> None:
    text = GOOD.replace("max_amount = 10000 }", "max_amount = 10000.0 }")
    error = error_for(text)
    assert error.line == line_of(text, "10000.0")
    assert "float" in error.message and '"500.00"' in error.message


def test_a_float_is_refused_even_without_a_chart() -> None:
    text = GOOD.replace('max_amount = "500.00"', "max_amount = 500.00")
    with pytest.raises(RulesError) as caught:
        parse_rules(text)
    assert caught.value.line == line_of(text, "max_amount = 500.00")


def test_a_missing_required_key_names_the_table_header() -> None:
    text = GOOD.replace('receivable = "1210"\n', "")
    error = error_for(text)
    assert error.line == line_of(text, "[payers.SMPMB]")
    assert error.message == "payer SMPMB: receivable is required"


def test_a_dotted_key_is_located_too() -> None:
    text = GOOD.replace("version = 1\n", 'version = 1\npayers.SMPXX.receivable = "12 x"\n')
    error = error_for(text)
    assert error.line == line_of(text, "payers.SMPXX.receivable")
    assert "is not an account code" in error.message


@pytest.mark.parametrize(
    ("old", "new", "needle", "fragment"),
    [
        ('"CO-45" = "4100"', '"CO45" = "4100"', '"CO45"', "is not GROUP-REASON"),
        ("[plb]", "[plbs]", "[plbs]", "unknown key 'plbs'"),
        ('cost_centre = "CC100"', 'cost_center = "CC100"', "cost_center", "unknown key"),
        ('aliases = ["1000000001"]', 'aliases = "1000000001"', "aliases", "list"),
        ("small_balance =", '"Small Balance" =', "Small Balance", "is not a CARC"),
        ('"CO-50" = { denial = true }', '"CO-50" = { denial = "yes" }', "denial", "true or"),
        ('{ role = "analyst"', '{ role = "clerk"', '"clerk"', "unknown role 'clerk'"),
        ("version = 1", "version = 2", "version", "unsupported version"),
        ("max_amount = 10000 }", 'max_amount = "400.00" }', '"400.00"', "tiers must rise"),
    ],
)
def test_each_kind_of_mistake_names_its_line(
    old: str, new: str, needle: str, fragment: str
) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new)
    error = error_for(text)
    assert error.line == line_of(text, needle), str(error)
    assert fragment in error.message


def test_a_denial_may_not_name_an_account() -> None:
    text = GOOD.replace("{ denial = true }", '{ denial = true, account = "4150" }')
    error = error_for(text)
    assert error.line == line_of(text, '"CO-50" = { denial')
    assert "denial" in error.message


def test_an_alias_shared_by_two_payers_is_refused() -> None:
    text = GOOD + '\n[payers.SMPMD]\nreceivable = "1220"\naliases = ["1000000001"]\n'
    error = error_for(text)
    assert error.line == line_of(text, "[payers.SMPMD]")
    assert "'1000000001' is already used" in error.message


def test_tiers_that_only_the_engine_could_approve_are_refused() -> None:
    text = (
        GOOD + '\n[approvals.adjustment."CO-45"]\ntiers = [{ role = "auto", max_amount = "5" }]\n'
    )
    error = error_for(text)
    assert error.line == line_of(text, 'tiers = [{ role = "auto"')
    assert "the engine cannot approve" in error.message


def test_syntax_errors_carry_the_toml_line() -> None:
    text = GOOD.replace('L6 = "7100"', 'L6 = "7100')
    error = error_for(text)
    assert error.line == line_of(text, 'L6 = "7100')
    assert error.message.startswith("not valid TOML")


def test_every_problem_is_collected_in_file_order() -> None:
    text = (
        GOOD.replace('receivable = "1210"', 'receivable = "9999"')
        .replace('"CO-45" = "4100"', '"CO-45" = 4100')
        .replace('L6 = "7100"', 'L6 = "7100"\nXX_Y = "7100"')
    )
    error = error_for(text)
    found = [(p.line, p.message) for p in error.problems]
    assert found == [
        (line_of(text, '"9999"'), "unknown account '9999' for payer SMPMB"),
        (line_of(text, '"CO-45" = 4100'), "4100 is not an account code, for CO-45"),
        (line_of(text, "XX_Y"), "'XX_Y' is not a PLB reason such as L6 or WO"),
    ]
    assert error is error.problems[0]


def test_missing_cash_clearing_without_a_default_names_the_payer() -> None:
    text = GOOD.replace('[defaults]\ncash_clearing = "1010"\n', "")
    error = error_for(text)
    assert error.line == line_of(text, "[payers.SMPMB]")
    assert "no cash_clearing" in error.message


def test_accounts_are_checked_for_shape_only_when_no_chart_is_given() -> None:
    book = parse_rules(GOOD.replace('"CO-45" = "4100"', '"CO-45" = "5999"'))
    assert book.adjustment("CO", "45") == AdjustmentRule("CO-45", "5999")
    assert "5999" in book.accounts()


def test_the_engine_can_only_be_the_first_tier() -> None:
    text = GOOD.replace('{ role = "supervisor", max_amount = 10000 }', '{ role = "auto" }')
    error = error_for(text)
    assert error.line == line_of(text, '{ role = "auto" }')
    assert "can only be the first tier" in error.message
