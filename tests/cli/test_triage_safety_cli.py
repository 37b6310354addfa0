"""Triage safety (stop 8) through ``claimsync``: a partial ``write-off --amount`` leaves the rest
of the item open, ``--amount`` takes plain dollars and cents only, and ``remap`` to a claim that
looks wrong for the payment is refused (exit 2, every reason on stderr) unless ``--force``."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from claimsync_console.domain import dollars
from claimsync_console.store.models import ClaimPaymentRow, ClaimRow, Remittance
from claimsync_console.store.models_engine import AuditEntry, PaymentMatch, WorkItem
from claimsync_console.store.models_triage import TriageAction
from tests.cli.triage_cli import (  # noqa: F401 - the fixtures are used by name
    Cli,
    cli_fixture,
    cli_template_fixture,
    no_traceback,
)

D = Decimal


def audit_rows(cli: Cli) -> list[AuditEntry]:
    with cli.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def denial(cli: Cli, over: str, at_most: str) -> WorkItem:
    return next(i for i in cli.items("denial") if D(over) < i.amount <= D(at_most))


# --------------------------------------------------------------------------- write-off --amount


def test_a_partial_write_off_leaves_the_rest_in_the_queue(cli: Cli) -> None:
    """The reviewer's repro: ``write-off ID --reason CO-45 --note x --amount 100`` on a 322.40
    denial closed it, and 222.40 vanished from every queue."""
    item = denial(cli, "150.00", "500.00")
    rest = item.amount - D("100.00")
    result = cli.run("write-off", str(item.id), "--reason", "CO-45", "--note", "x",
                     "--amount", "100")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "$100.00 written off as CO-45" in result.stdout
    assert f"{dollars(rest)} stays open" in result.stdout
    listed = cli.json("items", "list", "--queue", "denial", "--limit", "500")
    (shown,) = [i for i in listed["items"] if i["id"] == item.id]
    assert (shown["state"], shown["amount"]) == ("open", str(rest))
    history = cli.json("items", "show", str(item.id))["history"]
    assert history[-1]["after"]["write_off_amount"] == "100.00"
    assert history[-1]["after"]["remainder"] == str(rest)

    report = cli.json("write-off", str(item.id), "--reason", "CO-45", "--note", "the rest")
    assert (report["results"][0]["state"], cli.item(item.id).state) == ("written_off",) * 2
    assert cli.run("sync", "run", "--once").exit_code == 0
    assert sum(cli.ledger().trial_balance().values(), D(0)) == 0


@pytest.mark.parametrize(
    "amount",
    ["1e2", "1E+2", "+5", "-5", "NaN", "Infinity", "-inf", "1.001", "1,00", "0", "0.00", ".5"],
)
def test_amount_must_be_plain_dollars_and_cents(cli: Cli, amount: str) -> None:
    item = cli.items("denial")[0]
    result = cli.run("write-off", str(item.id), "--reason", "CO-45", "--note", "x",
                     f"--amount={amount}")  # fmt: skip
    assert result.exit_code == 2, (amount, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("claimsync: --amount: ") and result.stderr.count("\n") == 1
    no_traceback(result)
    assert cli.item(item.id).version == item.version and audit_rows(cli) == []


def test_amount_over_what_is_open_is_a_usage_error(cli: Cli) -> None:
    item = cli.items("denial")[0]
    over = str(item.amount + D("0.01"))
    result = cli.run(
        "write-off", str(item.id), "--reason", "CO-45", "--note", "x", "--amount", over
    )
    assert result.exit_code == 2 and f"only {dollars(item.amount)} is open" in result.stderr
    assert cli.item(item.id).state == "open"


def test_amount_is_shown_and_stored_with_two_decimals(cli: Cli) -> None:
    item = denial(cli, "150.00", "500.00")
    report = cli.json("write-off", str(item.id), "--reason", "CO-45", "--note", "x",
                      "--amount", "100.5")  # fmt: skip
    (outcome,) = report["results"]
    assert "100.50 written off" in outcome["message"] and "E+" not in outcome["message"]
    with cli.sessions() as session:
        row = session.get(TriageAction, outcome["action_id"])
        assert row is not None and row.payload["amount"] == "100.50"
    assert cli.outbox(outcome["outbox_id"]).amount == D("100.50")
    assert audit_rows(cli)[-1].after["write_off_amount"] == "100.50"  # type: ignore[index]


# --------------------------------------------------------------------------- remap --force


def wrong_claim(cli: Cli, item: WorkItem) -> int:
    """A claim of another payer, already paid, and billed at another amount than the payment."""
    with cli.sessions() as session:
        payment = session.get(ClaimPaymentRow, item.claim_payment_id)
        assert payment is not None
        remit = session.get(Remittance, payment.remittance_id)
        assert remit is not None
        for match in session.scalars(select(PaymentMatch).where(PaymentMatch.status == "matched")):
            claim = session.get(ClaimRow, match.claim_id)
            assert claim is not None
            if claim.payer_identifier != remit.payer_identifier and abs(
                claim.billed_amount - payment.charge
            ) > D("0.01"):
                return claim.id
    raise AssertionError("no such claim in the sample")


def test_remap_to_a_wrong_claim_is_refused_until_forced(cli: Cli) -> None:
    """The reviewer's repro: ``remap 41 --claim 179`` put a payment of one payer on a claim of
    another that was already paid, without a word."""
    item = cli.items("unmatched_remittance")[0]
    claim_id = wrong_claim(cli, item)
    refused = cli.run("remap", str(item.id), "--claim", str(claim_id), "--note", "by hand")
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1, refused.stderr  # one line, every reason in it
    for reason in ("payer differs", "already has an active payment", "charge differs", "--force"):
        assert reason in refused.stderr
    no_traceback(refused)
    assert cli.item(item.id).state == "open" and audit_rows(cli) == []
    as_json = cli.run("remap", str(item.id), "--claim", str(claim_id), "--json")
    (outcome,) = json.loads(as_json.stdout)["results"]
    assert as_json.exit_code == 2 and (outcome["ok"], outcome["exit_code"]) == (False, 2)
    assert "payer differs" in outcome["error"]

    forced = cli.run("remap", str(item.id), "--claim", str(claim_id), "--note", "payer confirmed",
                     "--force")  # fmt: skip
    assert forced.exit_code == 0, forced.stderr
    assert "forced over 3 warning(s)" in forced.stdout
    assert cli.item(item.id).state == "resolved"
    (row,) = audit_rows(cli)
    assert (row.action, row.reason, row.note) == ("remap", "forced", "payer confirmed")
    assert row.after is not None and len(row.after["overridden_warnings"]) == 3


def test_force_goes_with_claim_not_reprocess(cli: Cli) -> None:
    item = cli.items("mapping_error")[0]
    result = cli.run("remap", str(item.id), "--reprocess", "--force")
    assert result.exit_code == 2 and "--force applies to --claim" in result.stderr
    assert cli.item(item.id).state == "open"
