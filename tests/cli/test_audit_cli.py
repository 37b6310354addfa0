"""``claimsync audit list|export|verify`` through CliRunner, over actions taken with the CLI."""

from __future__ import annotations

import csv
import io
import itertools
import json
import sqlite3

import pytest

from claimsync_console.engine.audit_export import AUDIT_COLUMNS
from claimsync_console.store.queries_engine import GENESIS_HASH, audit_hash
from tests.cli.triage_cli import (  # noqa: F401 - the fixtures are used by name
    Cli,
    cli_fixture,
    cli_template_fixture,
    no_traceback,
)


@pytest.fixture(name="acted")
def acted_fixture(cli: Cli) -> Cli:
    """Four audited actions: alice ignores two items and writes one off, bob retries one."""
    for item in cli.items("unmatched_remittance")[:2]:
        assert cli.run("ignore", str(item.id), "--note", "not ours").exit_code == 0
    denial = min(cli.items("denial"), key=lambda i: i.amount)
    assert cli.run("write-off", str(denial.id), "--reason", "CO-45", "--note", "x").exit_code == 0
    dead = cli.items("dead_letter")[0]
    assert cli.run("retry", str(dead.id), CLAIMSYNC_OPERATOR="bob").exit_code == 0
    return cli


def test_list_shows_every_row_oldest_first(acted: Cli) -> None:
    listing = acted.json("audit", "list")
    assert listing["count"] == 4 and listing["more"] is False
    rows = listing["rows"]
    assert [r["action"] for r in rows] == ["ignore", "ignore", "write_off", "retry"]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(rows))
    table = acted.run("audit", "list")
    assert table.exit_code == 0 and "4 row(s)" in table.stdout


def test_list_filters(acted: Cli) -> None:
    assert acted.json("audit", "list", "--since", "1h")["count"] == 4
    assert acted.json("audit", "list", "--since", "2999-01-01")["count"] == 0
    assert acted.json("audit", "list", "--until", "2000-01-01T00:00:00")["count"] == 0
    by_bob = acted.json("audit", "list", "--by", "bob")["rows"]
    assert [r["action"] for r in by_bob] == ["retry"]
    item = by_bob[0]["work_item_id"]
    assert [r["id"] for r in acted.json("audit", "list", "--item", str(item))["rows"]] == [
        by_bob[0]["id"]
    ]
    limited = acted.run("audit", "list", "--limit", "3", "--json")
    assert json.loads(limited.stdout)["more"] is True and "more rows match" in limited.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "neither a duration"),
        (["--since", "1h", "--until", "2h"], "--until must be after --since"),
        (["--json", "--csv"], "exclude each other"),
    ],
)
def test_a_bad_period_is_a_usage_error(acted: Cli, args: list[str], message: str) -> None:
    for command in ("list", "export"):
        result = acted.run("audit", command, *args)
        assert result.exit_code == 2 and message in result.stderr and result.stdout == ""
        no_traceback(result)


def test_export_csv_and_json_lines_and_they_verify_on_their_own(acted: Cli) -> None:
    exported = acted.run("audit", "export", "--since", "2000-01-01")
    assert exported.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert tuple(rows[0]) == AUDIT_COLUMNS and len(rows) == 4
    lines = acted.run("audit", "export", "--json").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [int(r["id"]) for r in rows]
    previous = GENESIS_HASH
    for record in records:  # the recipe needs nothing but the exported rows
        assert record["prev_hash"] == previous
        assert audit_hash(record, record["prev_hash"]) == record["hash"]
        previous = record["hash"]


def test_export_to_a_file(acted: Cli) -> None:
    target = acted.folder / "audit.csv"
    result = acted.run("audit", "export", "--out", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    assert "exported 4 audit row(s)" in result.stderr
    assert len(target.read_text().splitlines()) == 5
    nowhere = acted.run("audit", "export", "--out", str(acted.folder / "no" / "such" / "x.csv"))
    assert nowhere.exit_code == 2 and "cannot write" in nowhere.stderr


def test_verify_an_intact_chain(acted: Cli) -> None:
    result = acted.run("audit", "verify")
    assert result.exit_code == 0 and "audit chain intact: 4 row(s)" in result.stdout
    check = acted.json("audit", "verify")
    head = acted.json("audit", "list")["rows"][-1]["hash"]
    assert check == {
        "intact": True, "rows": 4, "first_broken_id": None, "first_broken": None, "why": "",
        "head": head,
    }  # fmt: skip
    assert f"head {head}" in result.stdout
    assert acted.run("audit", "verify", "--head", head).exit_code == 0


def _tamper(cli: Cli, sql: str) -> None:
    with sqlite3.connect(cli.folder / "claimsync.sqlite") as connection:
        connection.execute(sql)
    connection.close()


def test_verify_names_the_first_edited_row(acted: Cli) -> None:
    rows = acted.json("audit", "list")["rows"]
    _tamper(acted, f"UPDATE audit_log SET note = 'changed' WHERE id = {rows[1]['id']}")
    result = acted.run("audit", "verify")
    assert result.exit_code == 1
    assert f"audit chain broken at row {rows[1]['id']}" in result.stdout
    assert f"row {rows[1]['id']}" in result.stderr and "edited" in result.stderr
    check = acted.json("audit", "verify", code=1)
    assert check["intact"] is False and check["first_broken_id"] == rows[1]["id"]
    assert check["first_broken"]["note"] == "changed"


def test_verify_names_the_row_after_a_removed_one(acted: Cli) -> None:
    rows = acted.json("audit", "list")["rows"]
    _tamper(acted, f"DELETE FROM audit_log WHERE id = {rows[1]['id']}")
    check = acted.json("audit", "verify", code=1)
    assert check["first_broken_id"] == rows[2]["id"] and "removed" in check["why"]


def test_verify_sees_rows_cut_from_the_end(acted: Cli) -> None:
    """The chain that is left is whole; the actions whose audit rows went are not."""
    rows = acted.json("audit", "list")["rows"]
    _tamper(acted, f"DELETE FROM audit_log WHERE id >= {rows[2]['id']}")
    result = acted.run("audit", "verify")
    assert result.exit_code == 1 and "audit trail incomplete" in result.stdout
    assert "write_off" in result.stdout and "has no audit row" in result.stdout
    no_traceback(result)


def test_verify_holds_the_chain_to_a_recorded_head(acted: Cli) -> None:
    """Cutting the end together with its actions leaves nothing inside to compare: the head an
    auditor recorded earlier is what catches it."""
    recorded = acted.json("audit", "verify")["head"]
    last = acted.json("audit", "list")["rows"][-1]
    _tamper(acted, f"DELETE FROM audit_log WHERE id = {last['id']}")
    _tamper(acted, f"DELETE FROM triage_actions WHERE work_item_id = {last['work_item_id']}")
    assert acted.run("audit", "verify").exit_code == 0  # nothing inside gives it away
    check = acted.json("audit", "verify", "--head", recorded, code=1)
    assert check["intact"] is False and "no longer in the chain" in check["why"]
