"""``claimsync items list|show`` and ``claimsync status`` through CliRunner, on the sample data
after one engine run (see ``triage_cli``)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from claimsync_console.cli.items_cmd import ITEM_COLUMNS
from claimsync_console.engine.item_detail import QUEUES
from claimsync_console.store.models import SourceFile
from claimsync_console.store.queries import get_blob
from claimsync_console.x12.tokenizer import tokenize
from tests.cli.triage_cli import (  # noqa: F401 - the fixtures are used by name
    Cli,
    cli_fixture,
    cli_template_fixture,
    no_traceback,
)


@pytest.mark.parametrize("queue", list(QUEUES))
def test_each_queue_lists_its_open_items_oldest_first(cli: Cli, queue: str) -> None:
    expected = cli.items(QUEUES[queue])
    assert expected, f"the sample data should have {queue} items"
    listing = cli.json("items", "list", "--queue", queue, "--limit", "500")
    assert [i["id"] for i in listing["items"]] == [i.id for i in expected]
    assert listing["count"] == len(expected) and listing["more"] is False
    assert Decimal(listing["total"]) == sum((i.amount for i in expected), Decimal(0))
    assert {i["queue"] for i in listing["items"]} == {queue}


def test_filters_narrow_the_queue(cli: Cli) -> None:
    denials = cli.items("denial")
    payer = denials[0].payer_id
    by_payer = cli.json("items", "list", "--queue", "denial", "--payer", payer.lower())
    assert [i["id"] for i in by_payer["items"]] == [i.id for i in denials if i.payer_id == payer]
    big = cli.json("items", "list", "--queue", "denial", "--min-amount", "1000")
    assert [i["id"] for i in big["items"]] == [i.id for i in denials if i.amount >= 1000]
    dead = cli.json("items", "list", "--queue", "dead-letter", "--error-contains", "INACTIVE")
    assert dead["count"] == cli.dead_letters
    assert (
        cli.json("items", "list", "--queue", "dead-letter", "--error-contains", "xyz")["count"] == 0
    )
    # the template's items were opened on 2026-03-01
    assert cli.json("items", "list", "--queue", "denial", "--older-than", "1d")["count"] == len(
        denials
    )
    assert cli.json("items", "list", "--older-than", "520w")["items"] == []


def test_dead_letters_carry_their_payer_and_claim_so_the_payer_filter_finds_them(cli: Cli) -> None:
    dead = cli.items("dead_letter")
    claim_bound = [i for i in dead if i.claim_payment_id is not None]
    assert claim_bound and all(i.payer_id and i.patient_control_number for i in claim_bound)
    payer = claim_bound[0].payer_id
    listing = cli.json(
        "items", "list", "--queue", "dead-letter", "--payer", payer, "--limit", "500"
    )
    assert listing["count"] == sum(1 for i in dead if i.payer_id == payer) > 0


def test_limit_says_there_is_more(cli: Cli) -> None:
    listing = cli.json("items", "list", "--queue", "denial", "--limit", "2")
    assert listing["count"] == 2 and listing["more"] is True
    table = cli.run("items", "list", "--queue", "denial", "--limit", "2")
    assert table.exit_code == 0
    assert "more items match" in table.stderr and "more items match" not in table.stdout


def test_closed_items_are_listed_by_state(cli: Cli) -> None:
    item = cli.items("unmatched_remittance")[0]
    assert cli.run("ignore", str(item.id), "--note", "not ours").exit_code == 0
    ignored = cli.json("items", "list", "--state", "ignored")
    assert [i["id"] for i in ignored["items"]] == [item.id]
    assert item.id not in [i["id"] for i in cli.json("items", "list", "--limit", "500")["items"]]


def test_csv_has_one_row_per_item_and_every_column(cli: Cli) -> None:
    result = cli.run("items", "list", "--queue", "approval", "--csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == ITEM_COLUMNS
    assert [int(r["id"]) for r in rows] == [i.id for i in cli.items("approval")]
    assert all(Decimal(r["amount"]) > 0 for r in rows)


def test_the_table_prints_bracketed_text_as_it_is(cli: Cli) -> None:
    result = cli.run("items", "list", "--queue", "dead-letter", "--limit", "1", COLUMNS="200")
    assert result.exit_code == 0
    assert "[unknown_account]" in result.stdout  # not swallowed as a rich style tag


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queue", "bogus"], "unknown queue 'bogus'"),
        (["--older-than", "2x"], "not a duration"),
        (["--min-amount", "abc"], "not an amount"),
        (["--min-amount", "1.001"], "dollars and cents"),
        (["--min-amount", "1,00"], "a comma may only separate thousands"),  # never 100
        (["--state", "closed"], "unknown state 'closed'"),
        (["--json", "--csv"], "exclude each other"),
    ],
)
def test_a_bad_filter_is_a_usage_error(cli: Cli, args: list[str], message: str) -> None:
    result = cli.run("items", "list", *args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stdout == ""
    no_traceback(result)


def test_show_a_dead_letter_with_its_segments_and_attempts(cli: Cli) -> None:
    item = cli.items("dead_letter")[0]
    detail = cli.json("items", "show", str(item.id))
    assert detail["item"]["id"] == item.id and detail["item"]["state"] == "open"
    assert detail["source"]["kind"] == "claim_payment"
    assert detail["segments"][0]["id"] == "CLP"
    assert detail["outbox"]["status"] == "dead" and detail["outbox"]["id"] == item.outbox_id
    assert [a["outcome"] for a in detail["attempts"]] == ["permanent"]
    assert "4120" in detail["attempts"][0]["error"]


def test_show_masks_people_in_the_raw_segments(cli: Cli) -> None:
    item = cli.items("unmatched_remittance")[0]
    detail = cli.json("items", "show", str(item.id))
    assert detail["candidates"] and all("claim_id" in c for c in detail["candidates"])
    names = [s for s in detail["segments"] if s["id"] == "NM1"]
    assert names and all("[PHI]" in s["text"] for s in names)
    with cli.sessions() as session:
        source = session.get(SourceFile, detail["source"]["file_id"])
        assert source is not None
        content = get_blob(session, source.sha256)
    assert content is not None
    raw = {s.index: s for s in tokenize(content)}
    table = cli.run("items", "show", str(item.id))
    assert table.exit_code == 0 and "candidates" in table.stdout
    for shown in names:
        for value in raw[shown["index"]].elements[3:5]:  # last and first name
            if value:
                assert value not in table.stdout and value not in shown["text"]


def test_show_has_the_history_and_actions_after_an_action(cli: Cli) -> None:
    denial = min(cli.items("denial"), key=lambda i: i.amount)
    done = cli.json("write-off", str(denial.id), "--reason", "CO-45", "--note", "small balance")
    detail = cli.json("items", "show", str(denial.id))
    assert [h["action"] for h in detail["history"]] == ["write_off"]
    assert detail["history"][0]["operator"] == "alice"
    assert [a["id"] for a in detail["actions"]] == [done["results"][0]["action_id"]]
    table = cli.run("items", "show", str(denial.id))
    assert "history" in table.stdout and "reverse takes these ids" in table.stdout


def test_show_an_unknown_item_is_exit_2(cli: Cli) -> None:
    result = cli.run("items", "show", "999999")
    assert result.exit_code == 2 and "no work item 999999" in result.stderr
    assert result.stdout == ""
    no_traceback(result)


def test_status_json_and_table(cli: Cli) -> None:
    status = cli.json("status")
    assert status["dashboard"]["queues"]["dead_letter"]["count"] == cli.dead_letters
    table = cli.run("status")
    assert table.exit_code == 0 and "Open work items" in table.stdout
