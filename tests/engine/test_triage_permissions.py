"""``approve_refusal``: the one approve check the service refuses with and the console asks
before it asks for a note (issue #4). Pure: the rules file and the item's fields, no database."""

from __future__ import annotations

from decimal import Decimal

from claimsync_console.engine.rules import load_rules, sample_rules_path
from claimsync_console.engine.triage_model import approve_refusal

RULES = load_rules(sample_rules_path())
ADJUSTMENT = {"approval_kind": "adjustment", "reason_code": "CO-45"}
WRITE_OFF = {"approval_kind": "write_off", "reason_code": "CO-197"}


def refusal(details: dict[str, str], amount: str, role: str, operator: str = "bob") -> str | None:
    return approve_refusal(
        RULES, 7, details, Decimal(amount), "alice", operator=operator, role=role
    )


def test_a_role_outside_the_tiers_is_refused_with_the_reason() -> None:
    why = refusal(ADJUSTMENT, "9000.00", "analyst")
    assert why is not None and why.startswith("cannot approve work item 7: role analyst is not")
    assert refusal(ADJUSTMENT, "9000.00", "supervisor") is None


def test_a_role_approves_up_to_its_own_tier() -> None:
    assert refusal(WRITE_OFF, "500.00", "analyst") is None
    assert "up to $500.00, not $500.01" in (refusal(WRITE_OFF, "500.01", "analyst") or "")
    assert refusal(WRITE_OFF, "20000.00", "supervisor") is None  # the last tier decides


def test_no_one_approves_their_own_request() -> None:
    why = refusal(WRITE_OFF, "10.00", "supervisor", operator="alice")
    assert why == "you requested work item 7: someone else must approve it"
