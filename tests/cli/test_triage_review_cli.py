"""The second review of triage (stop 8) through ``claimsync``: ``--payer`` takes a piece of a
payer's name as the console's ``payer:`` does, a denial's waiting write-off request shows in
``items list`` and ``items show`` and keeps ``ignore`` off it, a request beyond every tier says
so, and ``--amount`` takes ``$`` and thousands commas but never a comma for cents."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from claimsync_console.store.models_engine import WorkItem
from claimsync_console.store.queue_search import payers_like
from tests.cli.triage_cli import (  # noqa: F401 - the fixtures are used by name
    Cli,
    cli_fixture,
    cli_template_fixture,
    no_traceback,
)

D = Decimal


def denial(cli: Cli, over: str, at_most: str | None = None) -> WorkItem:
    return next(
        i for i in cli.items("denial")
        if i.amount > D(over) and (at_most is None or i.amount <= D(at_most))
    )  # fmt: skip


def requested(cli: Cli, item: WorkItem) -> int:
    """A write-off over alice's limit: the approval item it opened."""
    asked = cli.json("write-off", str(item.id), "--reason", item.details["carcs"][0],
                     "--note", "lost")  # fmt: skip
    (outcome,) = asked["results"]
    assert outcome["action"] == "write_off_requested", outcome
    return int(outcome["related_item_id"])


# --------------------------------------------------------------------------- --payer


def test_payer_takes_a_piece_of_the_name_as_the_console_does(cli: Cli) -> None:
    """The reviewer's case: ``--queue denial --payer acme`` listed 0 items, silently."""
    by_id = cli.json("items", "list", "--queue", "denial", "--payer", "SMPAE", "--limit", "500")
    by_name = cli.json("items", "list", "--queue", "denial", "--payer", "acme", "--limit", "500")
    assert by_id["items"] and [i["id"] for i in by_name["items"]] == [
        i["id"] for i in by_id["items"]
    ]
    assert by_name["filters"]["payer"] == "SMPAE"

    several = cli.run("items", "list", "--queue", "denial", "--payer", "sample")
    assert several.exit_code == 2 and several.stdout == ""
    assert several.stderr.startswith("claimsync: --payer sample matches ")
    assert "payers: " in several.stderr and several.stderr.count("\n") == 1
    no_traceback(several)
    unknown = cli.json("items", "list", "--queue", "denial", "--payer", "nobody")
    assert (unknown["count"], unknown["filters"]["payer"]) == (0, "NOBODY")


def test_retry_selects_by_a_payer_name_too(cli: Cli) -> None:
    dead = cli.items("dead_letter")
    with cli.sessions() as session:
        piece = next(
            word for item in dead for word in item.payer_name.lower().split()
            if [p for p, _ in payers_like(session, word)] == [item.payer_id]
        )  # fmt: skip
        payer = payers_like(session, piece)[0][0]
    by_name = cli.json("retry", "--queue", "dead-letter", "--payer", piece, "--dry-run")
    by_id = cli.json("retry", "--queue", "dead-letter", "--payer", payer, "--dry-run")
    assert by_name["preview"]["ids"] == by_id["preview"]["ids"]
    assert by_name["preview"]["ids"] == [i.id for i in dead if i.payer_id == payer]


# --------------------------------------------------------------------------- a waiting request


def test_items_list_and_show_carry_the_waiting_request(cli: Cli) -> None:
    item = denial(cli, "500.00", "10000.00")
    approval = requested(cli, item)
    listing = cli.json("items", "list", "--queue", "denial", "--limit", "500")
    waiting = {i["id"]: i["pending_approval"] for i in listing["items"]}
    assert waiting.pop(item.id) == approval and set(waiting.values()) == {None}

    table = cli.run("items", "list", "--queue", "denial", "--limit", "500")
    assert f"open · approval {approval} pending" in table.stdout
    as_csv = cli.run("items", "list", "--queue", "denial", "--limit", "500", "--csv")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(as_csv.stdout))}
    assert rows[str(item.id)]["pending_approval"] == str(approval)

    shown = cli.run("items", "show", str(item.id))
    assert f"write-off waiting for approval: work item {approval}" in shown.stdout
    detail = cli.json("items", "show", str(item.id))
    assert detail["item"]["pending_approval"] == approval

    refused = cli.run("ignore", str(item.id), "--note", "duplicate")
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert (
        f"work item {item.id} has a write-off waiting for approval (work item {approval}):"
        " approve or ignore that first"
    ) in refused.stderr
    assert cli.item(item.id).state == "open"

    cli.json("ignore", str(approval), "--note", "appeal instead", CLAIMSYNC_OPERATOR="bob",
             CLAIMSYNC_ROLE="supervisor")  # fmt: skip
    again = cli.json("items", "list", "--queue", "denial", "--limit", "500")
    assert {i["id"]: i["pending_approval"] for i in again["items"]}[item.id] is None


def test_a_request_beyond_every_tier_is_flagged_in_its_message_show_and_approve(cli: Cli) -> None:
    item = denial(cli, "10000.00")
    asked = cli.run("write-off", str(item.id), "--reason", item.details["carcs"][0],
                    "--note", "lost")  # fmt: skip
    assert asked.exit_code == 0, asked.stderr
    assert "beyond every approval limit (top: $10,000.00 for supervisor): flagged" in asked.stdout
    approval = cli.item(item.id).details["pending_approval"]
    shown = cli.run("items", "show", str(approval)).stdout
    assert "approval: over the limit of 500.00: a supervisor decides" in shown
    assert "beyond every approval limit (top: 10,000.00 for supervisor): flagged" in shown
    approved = cli.run("approve", str(approval), "--note", "board agreed",
                       CLAIMSYNC_OPERATOR="bob", CLAIMSYNC_ROLE="supervisor")  # fmt: skip
    assert approved.exit_code == 0, approved.stderr
    flagged = "beyond every approval limit (top: $10,000.00 for supervisor): flagged"
    assert flagged in approved.stdout


# --------------------------------------------------------------------------- --amount


def test_amount_takes_a_dollar_sign_and_thousands_commas(cli: Cli) -> None:
    item = denial(cli, "150.00", "500.00")
    for typed in ("1,00", "12,50"):
        refused = cli.run("write-off", str(item.id), "--reason", "CO-45", "--note", "x",
                          f"--amount={typed}")  # fmt: skip
        assert refused.exit_code == 2 and "a comma may only separate thousands" in refused.stderr
    assert cli.item(item.id).version == item.version
    done = cli.json("write-off", str(item.id), "--reason", "CO-45", "--note", "x",
                    "--amount", "$100.00")  # fmt: skip
    assert "100.00 written off" in done["results"][0]["message"]
    assert cli.item(item.id).amount == item.amount - D("100.00")
