"""The journal-entry builder and the idempotency keys, on hand-made payments and on every claim
payment of the committed sample data, then posted into a real embedded ledger."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from claimsync_console.domain import (
    Adjustment,
    ClaimPayment,
    JournalLine,
    Party,
    PersonName,
    ProviderAdjustment,
    RemittanceHeader,
    RemittanceTrailer,
    ServicePayment,
)
from claimsync_console.engine.keys import (
    action_key,
    claim_payment_key,
    content_digest,
    plb_key,
)
from claimsync_console.engine.posting import (
    ApprovalRequirement,
    ClaimOutOfBalanceError,
    MissingRules,
    PostingPlan,
    approval_needed,
    build_payment_entry,
    build_plb_entry,
    build_write_off_entry,
)
from claimsync_console.engine.rules import MissingRule, RulesBook, load_rules, sample_rules_path
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.erp.ledger_schema import DEFAULT_CHART
from claimsync_console.x12.document import read_document

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
CHART = frozenset(spec.code for spec in DEFAULT_CHART)
NMC = "1234567893"  # Northside Medical Center's NPI in the sample data and rules
ON = date(2026, 1, 19)
D = Decimal


@pytest.fixture(scope="module")
def rules() -> RulesBook:
    return load_rules(sample_rules_path(), known_accounts=CHART)


def header(payer_id: str = "SMPMB", npi: str = NMC, trn03: str = "1000000001") -> RemittanceHeader:
    return RemittanceHeader(
        interchange_control_number="000000011",
        group_control_number="11",
        transaction_control_number="0001",
        version="005010X221A1",
        sender_id="SMPMB",
        receiver_id="SMPNMC",
        handling_code="I",
        payment_amount=D("70.00"),
        credit_debit="C",
        payment_method="ACH",
        payment_format="CCP",
        payment_date=ON,
        trace_type="1",
        trace_number="MCREFT00000001",
        originator_id=trn03,
        payer=Party("MEDICARE AB SAMPLE MAC", "2U", payer_id),
        payee=Party("NORTHSIDE MEDICAL CENTER", "XX", npi),
    )


def payment(
    charge: str = "100.00",
    paid: str = "70.00",
    claim_cas: tuple[tuple[str, str, str], ...] = (("CO", "45", "20.00"), ("PR", "2", "10.00")),
    services: tuple[ServicePayment, ...] = (),
    status: str = "1",
    sequence: int = 1,
) -> ClaimPayment:
    return ClaimPayment(
        patient_control_number="NMC0000001",
        status_code=status,
        charge=D(charge),
        paid=D(paid),
        patient_responsibility=None,
        filing_indicator="MB",
        payer_claim_control_number="12600500000001",
        adjustments=tuple(Adjustment(g, r, D(a)) for g, r, a in claim_cas),
        services=services,
        patient=PersonName("QC", "DOE", "JANE", member_id="1AB2CD3EF45"),
        segment_start=14 + sequence * 10,
        sequence=sequence,
    )


def service(charge: str, paid: str, *cas: tuple[str, str, str]) -> ServicePayment:
    adjustments = tuple(Adjustment(g, r, D(a)) for g, r, a in cas)
    return ServicePayment("HC", "99213", (), D(charge), D(paid), adjustments=adjustments)


def built(rules: RulesBook, clp: ClaimPayment, hdr: RemittanceHeader | None = None) -> PostingPlan:
    plan = build_payment_entry(hdr or header(), clp, rules, source_key="k1", entry_date=ON)
    assert isinstance(plan, PostingPlan), plan
    return plan


def rows(plan: PostingPlan) -> list[tuple[str, str, str]]:
    """(account, debit, credit) per line, as text, so the expectations read like the primer."""
    assert plan.entry is not None
    return [(ln.account, str(ln.debit), str(ln.credit)) for ln in plan.entry.lines]


def mirrored(lines: tuple[JournalLine, ...]) -> tuple[JournalLine, ...]:
    return tuple(replace(ln, debit=ln.credit, credit=ln.debit) for ln in lines)


# --------------------------------------------------------------------------- claim entries


def test_the_primer_example_to_the_cent(rules: RulesBook) -> None:
    plan = built(rules, payment())
    assert rows(plan) == [
        ("1010", "70.00", "0.00"),  # cash clearing
        ("4100", "20.00", "0.00"),  # contractual allowance (CO-45)
        ("1300", "10.00", "0.00"),  # patient receivable (PR-2, transfer)
        ("1210", "0.00", "100.00"),  # Medicare receivable
    ]
    assert plan.entry is not None
    assert {ln.cost_centre for ln in plan.entry.lines} == {"CC100-NMC"}
    assert plan.entry.idempotency_key == "k1" and plan.entry.reference == "MCREFT00000001"
    assert "DOE" not in plan.entry.description and "NMC0000001" in plan.entry.description
    assert plan.cash == D("70.00") and not plan.opens_denial


def test_a_reversal_posts_the_exact_mirror(rules: RulesBook) -> None:
    original = payment(
        services=(service("50.00", "30.00", ("CO", "45", "15.00"), ("CO", "253", "5.00")),),
        charge="150.00",
        paid="100.00",
    )
    reversal = replace(
        original,
        status_code="22",
        charge=-original.charge,
        paid=-original.paid,
        adjustments=tuple(replace(a, amount=-a.amount) for a in original.adjustments),
        services=tuple(
            replace(s, adjustments=tuple(replace(a, amount=-a.amount) for a in s.adjustments))
            for s in original.services
        ),
    )
    first, second = built(rules, original), built(rules, reversal)
    assert first.entry is not None and second.entry is not None
    assert second.entry.lines == mirrored(first.entry.lines)
    assert all(ln.debit >= 0 and ln.credit >= 0 for ln in second.entry.lines)
    assert second.cash == -first.cash == D("-100.00")
    assert "reversal" in second.entry.description


def test_claim_and_line_adjustments_of_one_carc_share_a_line(rules: RulesBook) -> None:
    lines = (
        service("60.00", "40.00", ("CO", "45", "12.00"), ("PR", "1", "8.00")),
        service(
            "40.00", "25.00", ("CO", "45", "10.00"), ("CO", "253", "0.50"), ("PR", "3", "4.50")
        ),
    )
    clp = payment("110.00", "65.00", (("CO", "45", "10.00"),), services=lines)
    assert rows(built(rules, clp)) == [
        ("1010", "65.00", "0.00"),
        ("4100", "32.00", "0.00"),  # 10.00 claim level + 12.00 + 10.00 line level
        ("1300", "8.00", "0.00"),  # PR-1
        ("4110", "0.50", "0.00"),  # CO-253 sequestration
        ("1300", "4.50", "0.00"),  # PR-3, its own line for the audit trail
        ("1210", "0.00", "110.00"),
    ]


def test_a_negative_cas_flips_side_and_zero_lines_are_dropped(rules: RulesBook) -> None:
    clp = payment(
        "100.00", "0.00", (("PR", "1", "105.00"), ("CO", "45", "-5.00"), ("PR", "2", "0"))
    )
    assert rows(built(rules, clp)) == [
        ("1300", "105.00", "0.00"),
        ("4100", "0.00", "5.00"),
        ("1210", "0.00", "100.00"),
    ]


def test_a_full_denial_posts_nothing_and_keeps_the_charge_open(rules: RulesBook) -> None:
    clp = payment("250.00", "0.00", (("CO", "50", "250.00"),), status="4")
    plan = built(rules, clp)
    assert plan.entry is None and "denial" in plan.note
    assert plan.opens_denial and plan.denied_total == D("250.00") and plan.cash == 0
    # even codes that would post elsewhere stay open on a whole-claim denial
    mixed = payment("250.00", "0.00", (("CO", "45", "50.00"), ("PR", "1", "200.00")), status="4")
    assert built(rules, mixed).entry is None and built(rules, mixed).denied_total == D("250.00")


def test_a_denied_line_stays_open_on_the_receivable(rules: RulesBook) -> None:
    lines = (
        service("80.00", "50.00", ("CO", "45", "30.00")),
        service("120.00", "0.00", ("CO", "50", "120.00")),
    )
    plan = built(rules, payment("200.00", "50.00", (), services=lines))
    assert rows(plan) == [
        ("1010", "50.00", "0.00"),
        ("4100", "30.00", "0.00"),
        ("1210", "0.00", "80.00"),
    ]
    assert plan.opens_denial and plan.denied_total == D("120.00")
    assert [(d.code, d.account) for d in plan.denied] == [("CO-50", None)]


def test_a_claim_that_does_not_balance_is_refused(rules: RulesBook) -> None:
    with pytest.raises(ClaimOutOfBalanceError, match=r"CLP03 100\.00 - CLP04 70\.00 != CAS 29\.99"):
        built(rules, payment(claim_cas=(("CO", "45", "19.99"), ("PR", "2", "10.00"))))


def test_missing_rules_are_each_named_once(rules: RulesBook) -> None:
    lines = (service("50.00", "0.00", ("CO", "B7", "50.00")),)
    clp = payment(
        "150.00", "70.00", (("CO", "B7", "10.00"), ("OA", "121", "20.00")), services=lines
    )
    result = build_payment_entry(
        header("SMPZZ", "1999999999", trn03="1999999999"), clp, rules, source_key="k", entry_date=ON
    )
    assert isinstance(result, MissingRules) and result.source_key == "k"
    assert result.missing == (
        MissingRule("payer", "SMPZZ", "MEDICARE AB SAMPLE MAC"),
        MissingRule("facility", "1999999999", "NORTHSIDE MEDICAL CENTER"),
        MissingRule("carc", "CO-B7"),
        MissingRule("carc", "OA-121"),
    )
    assert "no carc rule for 'CO-B7'" in str(result)


def test_the_payer_is_found_by_trn03_when_the_835_has_no_payer_id(rules: RulesBook) -> None:
    plan = built(rules, payment(), header(payer_id=""))
    assert plan.payer_id == "SMPMB"


# --------------------------------------------------------------------------- PLB and write-offs


def test_plb_signs_interest_adds_cash_recoupment_takes_it(rules: RulesBook) -> None:
    plbs = [
        ProviderAdjustment(NMC, None, "L6", "12600500000003", D("-12.81")),
        ProviderAdjustment(NMC, None, "WO", "12600500000009", D("26.45")),
        ProviderAdjustment(NMC, None, "FB", "FB00000038", D("35.18")),
    ]
    plan = build_plb_entry(header(), plbs, rules, source_key="p", entry_date=ON)
    assert isinstance(plan, PostingPlan)
    assert rows(plan) == [
        ("1010", "0.00", "48.82"),  # -(-12.81 + 26.45 + 35.18)
        ("7100", "0.00", "12.81"),  # interest income
        ("1250", "26.45", "0.00"),  # recoupment receivable (WO)
        ("1250", "35.18", "0.00"),  # forwarding balance (FB)
    ]
    assert plan.cash == D("-48.82")
    interest = build_plb_entry(header(), plbs[:1], rules, source_key="p", entry_date=ON)
    assert isinstance(interest, PostingPlan)
    assert rows(interest) == [("1010", "12.81", "0.00"), ("7100", "0.00", "12.81")]


def test_an_unknown_plb_reason_is_a_missing_rule(rules: RulesBook) -> None:
    plbs = [ProviderAdjustment(NMC, None, "J1", "X", D("5.00"))]
    result = build_plb_entry(header(), plbs, rules, source_key="p", entry_date=ON)
    assert isinstance(result, MissingRules) and result.missing == (MissingRule("plb", "J1"),)


def test_a_write_off_debits_its_account_and_relieves_the_receivable(rules: RulesBook) -> None:
    plan = build_write_off_entry(
        reason="CO-50", amount=D("120.00"), payer_id="SMPBC", facility_id=NMC, rules=rules,
        source_key=action_key(7, 3), entry_date=ON, reference="NMC0000001",
    )  # fmt: skip
    assert isinstance(plan, PostingPlan)
    assert rows(plan) == [("4150", "120.00", "0.00"), ("1230", "0.00", "120.00")]
    missing = build_write_off_entry(
        reason="goodwill", amount=D("1.00"), payer_id="SMPBC", facility_id=NMC, rules=rules,
        source_key="x", entry_date=ON,
    )  # fmt: skip
    assert isinstance(missing, MissingRules)
    assert missing.missing == (MissingRule("write_off", "goodwill"),)


# --------------------------------------------------------------------------- approvals


def write_off(rules: RulesBook, reason: str, amount: str) -> PostingPlan:
    plan = build_write_off_entry(
        reason=reason, amount=D(amount), payer_id="SMPMB", facility_id=NMC, rules=rules,
        source_key="w", entry_date=ON,
    )  # fmt: skip
    assert isinstance(plan, PostingPlan)
    return plan


def test_write_off_tiers(rules: RulesBook) -> None:
    assert approval_needed(write_off(rules, "CO-50", "500.00"), rules, "analyst") is None
    assert approval_needed(write_off(rules, "CO-50", "500.01"), rules, "analyst") == (
        ApprovalRequirement("analyst", "supervisor", "write_off", "CO-50", D("500.01"), D("500.00"))
    )
    assert approval_needed(write_off(rules, "CO-50", "9000.00"), rules, "supervisor") is None
    beyond = approval_needed(write_off(rules, "CO-50", "12000.00"), rules, "supervisor")
    assert beyond is not None and beyond.required_role == "supervisor" and beyond.beyond_all_tiers
    # the engine is in no write-off tier: it may write off nothing on its own
    engine = approval_needed(write_off(rules, "small_balance", "3.00"), rules, "auto")
    assert engine is not None and (engine.required_role, engine.limit) == ("analyst", D("0.00"))


def test_adjustment_tiers_sum_claim_and_line_amounts(rules: RulesBook) -> None:
    lines = (service("6000.00", "0.00", ("CO", "45", "4000.00"), ("PR", "1", "2000.00")),)
    clp = payment(
        "14000.00", "2000.00", (("CO", "45", "3500.01"), ("PR", "2", "2499.99")), services=lines
    )
    needed = approval_needed(built(rules, clp), rules, "auto")
    assert needed == ApprovalRequirement(
        "auto", "supervisor", "adjustment", "CO-45", D("7500.01"), D("7500.00")
    )
    smaller = payment(
        "14000.00", "2000.01", (("CO", "45", "3500.00"), ("PR", "2", "2499.99")), services=lines
    )
    assert approval_needed(built(rules, smaller), rules, "auto") is None


# --------------------------------------------------------------------------- keys


def test_keys_are_pinned_forever() -> None:
    """If this fails, the derivation changed and every posted key would be posted again."""
    clp, sha = payment(), "ab" * 32
    digest = content_digest(clp)
    assert digest == "35478cdc0f095680b3726406c941603df306fe887a3c00ab3302990529cfe2aa"
    key = claim_payment_key(sha, header(), clp)
    assert key == "clp:7c4d26543b0db2a1d9305dbd30feb83a26bde383939445e1e053eeea7c3e054b"
    assert plb_key(sha, header()) == (
        "plb:33920444433fe845df392f320a0e5885db9e78162e7a2c28a4512df8bc52cbff"
    )
    assert action_key(7, 3) == (
        "act:cf2c2233ba96c50534c8f92e6588586cc4cd39959444fbbbd5b7fee0034b8653"
    )
    # ... and the pinned key is what the module docstring says it is
    parts = ["clp/v1", sha, "000000011", "11", "0001", "1", "24", digest]
    assert key == "clp:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    money = ["NMC0000001", "1", "100.00", "70.00", "", "12600500000001", "CO-45=20.00"]
    money.append("PR-2=10.00")
    assert digest == hashlib.sha256("\x1f".join(money).encode()).hexdigest()


def test_content_digest_ignores_scale_and_names_but_not_money() -> None:
    clp = payment()
    same = replace(clp, charge=D("100"), paid=D("70.0"), patient=None)
    assert content_digest(same) == content_digest(clp)
    negated_zero = replace(clp, adjustments=(*clp.adjustments, Adjustment("CO", "45", D("-0.00"))))
    zero = replace(clp, adjustments=(*clp.adjustments, Adjustment("CO", "45", D("0"))))
    assert content_digest(negated_zero) == content_digest(zero)
    assert content_digest(replace(clp, paid=D("70.01"))) != content_digest(clp)
    assert claim_payment_key("f", header(), payment(sequence=2)) != claim_payment_key(
        "f", header(), clp
    )
    assert plb_key("f", header()) != plb_key("g", header())
    assert action_key(7, 3) != action_key(7, 4) != action_key(3, 7)


# --------------------------------------------------------------------------- the sample data


@dataclass
class Check:
    file: str
    sha256: str
    header: RemittanceHeader
    payments: list[ClaimPayment]
    trailer: RemittanceTrailer


def read_checks() -> list[Check]:
    checks = []
    for path in sorted((SAMPLE_DATA / "835").glob("*.x12")):
        data = path.read_bytes()
        payments: list[ClaimPayment] = []
        for item in read_document(data, path.name):
            if isinstance(item, RemittanceHeader):
                hdr, payments = item, []
            elif isinstance(item, ClaimPayment):
                payments.append(item)
            elif isinstance(item, RemittanceTrailer):
                checks.append(
                    Check(path.name, hashlib.sha256(data).hexdigest(), hdr, payments, item)
                )
    return checks


@pytest.fixture(scope="module")
def checks() -> list[Check]:
    return read_checks()


@pytest.fixture(scope="module")
def planted() -> set[str]:
    manifest = json.loads((SAMPLE_DATA / "manifest.json").read_text())
    return set(manifest["unusual_carcs"])


def build_check(check: Check, rules: RulesBook) -> list[PostingPlan | MissingRules]:
    results: list[PostingPlan | MissingRules] = []
    entry_date = check.header.payment_date or ON
    for clp in check.payments:
        key = claim_payment_key(check.sha256, check.header, clp)
        results.append(
            build_payment_entry(check.header, clp, rules, source_key=key, entry_date=entry_date)
        )
    key = plb_key(check.sha256, check.header)
    results.append(
        build_plb_entry(
            check.header,
            check.trailer.provider_adjustments,
            rules,
            source_key=key,
            entry_date=entry_date,
        )
    )
    return results


def test_every_sample_claim_payment_posts_or_lacks_only_the_planted_codes(
    checks: list[Check], rules: RulesBook, planted: set[str]
) -> None:
    entries = denials = missing = 0
    for check in checks:
        for result in build_check(check, rules):
            if isinstance(result, MissingRules):
                assert {(m.kind, m.key) for m in result.missing} <= {("carc", c) for c in planted}
                missing += 1
            elif result.entry is not None:
                result.entry.assert_balanced()
                assert all(
                    ln.debit >= 0 and ln.credit >= 0 and (ln.debit or ln.credit)
                    for ln in result.entry.lines
                )
                assert {ln.account for ln in result.entry.lines} <= CHART
                entries += 1
            else:
                denials += result.opens_denial
    manifest = json.loads((SAMPLE_DATA / "manifest.json").read_text())
    carrying = {
        p.patient_control_number
        for c in checks
        for p in c.payments
        if {f"{a.group}-{a.reason_code}" for a in p.all_adjustments} & planted
    }
    assert missing == len(carrying) >= 2
    assert carrying <= set(manifest["problem_pcns"]["unusual_carc"])
    assert denials == sum(1 for c in checks for p in c.payments if p.status_code == "4")
    assert entries > 250


def test_a_checks_cash_lines_add_up_to_its_deposit(checks: list[Check], rules: RulesBook) -> None:
    summed = 0
    for check in checks:
        results = build_check(check, rules)
        if any(isinstance(r, MissingRules) for r in results):
            continue  # those payments wait in mapping_error items; reconciliation explains them
        cash = sum((r.cash for r in results if isinstance(r, PostingPlan)), D(0))
        assert cash == check.header.payment_amount, check.file
        summed += 1
    with_plb = [c for c in checks if c.trailer.provider_adjustments]
    assert summed >= len(checks) - 3 and len(with_plb) >= 5


def test_sample_reversals_mirror_their_originals_and_keys_differ(
    checks: list[Check], rules: RulesBook
) -> None:
    originals: dict[str, tuple[Check, ClaimPayment]] = {}
    pairs = 0
    for check in checks:
        for clp in check.payments:
            if clp.status_code != "22":
                originals.setdefault(clp.payer_claim_control_number, (check, clp))
                continue
            first_check, first = originals[clp.payer_claim_control_number]
            a, b = built(rules, first, first_check.header), built(rules, clp, check.header)
            assert a.entry is not None and b.entry is not None
            assert b.entry.lines == mirrored(a.entry.lines)
            correction = check.payments[check.payments.index(clp) + 1]
            keys = {
                claim_payment_key(first_check.sha256, first_check.header, first),
                claim_payment_key(check.sha256, check.header, clp),
                claim_payment_key(check.sha256, check.header, correction),
            }
            assert len(keys) == 3 and claim_payment_key(check.sha256, check.header, clp).startswith(
                "rev:"
            )
            pairs += 1
    assert pairs >= 5


def test_sample_keys_are_unique_and_the_same_on_a_second_reading(checks: list[Check]) -> None:
    def keys(all_checks: list[Check]) -> list[str]:
        found = [plb_key(c.sha256, c.header) for c in all_checks]
        return found + [
            claim_payment_key(c.sha256, c.header, p) for c in all_checks for p in c.payments
        ]

    first = keys(checks)
    assert len(set(first)) == len(first)
    assert keys(read_checks()) == first


# --------------------------------------------------------------------------- into a real ledger


def test_built_entries_post_into_the_embedded_ledger(
    tmp_path: Path, checks: list[Check], rules: RulesBook
) -> None:
    ledger = LedgerAdapter({"path": str(tmp_path / "ledger.sqlite3"), "bootstrap_year": 2026})
    chosen = [c for c in checks if c.file.startswith("835_UHC_RPG_")]  # a reversal and a PLB
    assert any(c.trailer.provider_adjustments for c in chosen)
    expected: defaultdict[str, Decimal] = defaultdict(Decimal)
    posted: dict[str, str] = {}
    for check in chosen:
        for result in build_check(check, rules):
            assert isinstance(result, PostingPlan)
            if result.entry is None:
                continue
            outcome = ledger.post_entry(result.entry)
            assert outcome.created
            posted[result.source_key] = outcome.erp_reference
            for line in result.entry.lines:
                expected[line.account] += line.debit - line.credit
    assert ledger.account_balance("1010") == sum((c.header.payment_amount for c in chosen), D(0))
    balances = ledger.trial_balance()
    assert {a: b for a, b in balances.items() if b} == {a: b for a, b in expected.items() if b}
    assert sum(balances.values()) == 0
    # re-posting the same source is a no-op, and the ledger's own reversal equals the built one
    again = build_check(chosen[0], rules)[0]
    assert isinstance(again, PostingPlan) and again.entry is not None
    assert ledger.post_entry(again.entry).created is False
    reversal = ledger.reverse_entry(posted[again.source_key], "test-reversal", ON)
    mirror = ledger.get_entry(reversal.erp_reference)
    assert mirror is not None and mirror.lines == mirrored(again.entry.lines)


def test_large_sample_adjustments_wait_for_a_supervisor(
    checks: list[Check], rules: RulesBook
) -> None:
    needed = [
        approval_needed(result, rules, "auto")
        for check in checks
        for result in build_check(check, rules)
        if isinstance(result, PostingPlan)
    ]
    found = [n for n in needed if n is not None]
    assert found and {n.required_role for n in found} == {"supervisor"}
    assert all(n.amount > n.limit for n in found)
