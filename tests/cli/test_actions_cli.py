"""The acting commands (retry, remap, approve, write-off, reverse, ignore) through CliRunner:
what each changes, its exit codes (2 usage or unknown id, 3 conflict, 4 permission, 5 ERP
unavailable, 1 some items failed), the bulk preview and confirmation, and the operator's
identity and role."""

from __future__ import annotations

import getpass
import json
import os
import pty
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from claimsync_console.store.models_engine import AuditEntry
from tests.cli.triage_cli import (  # noqa: F401 - the fixtures are used by name
    Cli,
    cli_fixture,
    cli_template_fixture,
    fixed_rules_file,
    no_traceback,
)


def audit_rows(cli: Cli) -> list[AuditEntry]:
    with cli.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


# --------------------------------------------------------------------------- retry


def test_retry_one_dead_letter_and_the_next_sync_posts_it(cli: Cli) -> None:
    item = cli.items("dead_letter")[0]
    report = cli.json("retry", str(item.id))
    (outcome,) = report["results"]
    assert outcome["ok"] is True and outcome["state"] == "resolved"
    assert outcome["outbox_id"] == item.outbox_id and report["operator"] == "alice"
    assert cli.outbox(item.outbox_id).status == "pending"
    assert cli.run("sync", "run", "--once").exit_code == 0
    assert cli.outbox(item.outbox_id).status == "posted"
    assert cli.ledger().find_entry(cli.outbox(item.outbox_id).idempotency_key) is not None


def test_retry_by_filter_dry_run_previews_and_changes_nothing(cli: Cli) -> None:
    dead = cli.items("dead_letter")
    total = sum((i.amount for i in dead), Decimal(0))
    report = cli.json("retry", "--queue", "dead-letter", "--dry-run")
    assert report["dry_run"] is True and report["results"] == []
    assert report["preview"]["count"] == len(dead)
    assert Decimal(report["preview"]["total"]) == total
    assert report["preview"]["ids"] == [i.id for i in dead]
    table = cli.run("retry", "--queue", "dead-letter", "--dry-run")
    assert table.exit_code == 0
    assert f"{len(dead)} item(s), {total:,.2f}; nothing changed" in table.stdout
    assert [i.id for i in cli.items("dead_letter")] == [i.id for i in dead]
    assert audit_rows(cli) == []


def test_a_bulk_retry_without_a_terminal_needs_yes(cli: Cli) -> None:
    dead = cli.items("dead_letter")
    refused = cli.run("retry", "--queue", "dead-letter")
    assert refused.exit_code == 2
    assert "pass --yes" in refused.stderr and f"{len(dead)} item(s)" in refused.stderr
    assert len(cli.items("dead_letter")) == len(dead)
    done = cli.json("retry", "--queue", "dead-letter", "--yes")
    assert done["succeeded"] == len(dead) and done["failed"] == 0
    assert cli.items("dead_letter") == []


def test_max_caps_a_bulk_retry_and_says_so(cli: Cli) -> None:
    dead = cli.items("dead_letter")
    result = cli.run("retry", "--queue", "dead-letter", "--yes", "--max", "2")
    assert result.exit_code == 0
    assert "more items matched than --max" in result.stderr
    first = ", ".join(str(i.id) for i in dead[:2])  # the preview shows what is acted on
    assert "retry: 2 item(s), " in result.stderr and f"({first});" in result.stderr
    assert f"{len(dead) - 2} more matched, left for a later run" in result.stderr
    assert len(cli.items("dead_letter")) == len(dead) - 2
    capped = cli.json("retry", "--queue", "dead-letter", "--yes", "--max", "1")
    assert capped["truncated"] is True and len(capped["results"]) == 1


def test_retry_filters_pick_the_same_items_as_items_list(cli: Cli) -> None:
    listed = cli.json("items", "list", "--queue", "dead-letter", "--min-amount", "500")
    assert 0 < listed["count"] < cli.dead_letters
    done = cli.json("retry", "--queue", "dead-letter", "--min-amount", "500", "--yes")
    assert [r["item_id"] for r in done["results"]] == [i["id"] for i in listed["items"]]
    error = cli.json("retry", "--queue", "dead-letter", "--error-contains", "4120", "--dry-run")
    assert error["preview"]["count"] == cli.dead_letters - listed["count"]


def test_one_failed_item_makes_a_bulk_run_exit_1_and_the_rest_still_go(cli: Cli) -> None:
    first, second = cli.items("dead_letter")[:2]
    assert cli.run("retry", str(first.id)).exit_code == 0
    result = cli.run("retry", str(first.id), str(second.id), "--yes", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [(r["item_id"], r["ok"]) for r in report["results"]] == [
        (first.id, False), (second.id, True),
    ]  # fmt: skip
    assert report["results"][0]["exit_code"] == 1 and "resolved" in report["results"][0]["error"]
    assert f"item {first.id}" in result.stderr
    assert cli.item(second.id).state == "resolved"


def test_retry_usage_errors(cli: Cli) -> None:
    item = cli.items("dead_letter")[0]
    for args, message in (
        ((), "retry what?"),
        ((str(item.id), "--queue", "dead-letter"), "not both"),
        (("--queue", "denial", "--yes"), "dead-letter queue"),
        (("--queue", "dead-letter", "--older-than", "soon"), "not a duration"),
        (("999999",), "no work item 999999"),
    ):
        result = cli.run("retry", *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr
        no_traceback(result)
    closed = cli.run("retry", str(cli.items("denial")[0].id))
    assert closed.exit_code == 1 and "dead_letter" in closed.stderr


def _on_a_terminal(cli: Cli, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``claimsync ARGS`` with a real pseudo-terminal as stdin, answering the prompt."""
    master, slave = pty.openpty()
    env = {**os.environ, **{k: v for k, v in cli.env().items() if v is not None}}
    env.pop("CLAIMSYNC_CONFIG", None)
    try:
        os.write(master, answer.encode() + b"\n")
        return subprocess.run(
            [sys.executable, "-c", "from claimsync_console.cli.app import main; main()", *args],
            stdin=slave, capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(master)
        os.close(slave)


def test_on_a_terminal_a_bulk_action_asks_first(cli: Cli) -> None:
    dead = cli.items("dead_letter")
    declined = _on_a_terminal(cli, "n", "retry", "--queue", "dead-letter")
    assert f"retry {len(dead)} item(s)?" in declined.stderr
    assert declined.returncode == 1 and "nothing changed" in declined.stderr
    assert len(cli.items("dead_letter")) == len(dead)
    accepted = _on_a_terminal(cli, "y", "retry", "--queue", "dead-letter")
    assert accepted.returncode == 0, accepted.stderr
    assert f"{len(dead)} done, 0 failed" in accepted.stdout
    assert cli.items("dead_letter") == []


# --------------------------------------------------------------------------- remap


def test_remap_to_a_claim(cli: Cli) -> None:
    item = cli.items("unmatched_remittance")[0]
    claim_id = item.details["candidates"][0]["claim_id"]
    # every candidate in the sample already has its own payment: the remap must be forced
    result = cli.run("remap", str(item.id), "--claim", str(claim_id), "--note", "by hand",
                     "--force")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"matched to claim {claim_id}" in result.stdout
    assert cli.item(item.id).state == "resolved" and cli.item(item.id).claim_id == claim_id
    again = cli.run("remap", str(item.id), "--claim", str(claim_id))
    assert again.exit_code == 1 and again.stdout == "" and "resolved" in again.stderr


def test_remap_usage_errors(cli: Cli) -> None:
    item = cli.items("unmatched_remittance")[0]
    for args, message in (
        ((str(item.id),), "--claim CLAIM_ID or --reprocess"),
        ((str(item.id), "--claim", "1", "--reprocess"), "--claim CLAIM_ID or --reprocess"),
        ((str(item.id), "--claim", "999999"), "no claim 999999"),
        (("999999", "--claim", "1"), "no work item 999999"),
    ):
        result = cli.run("remap", *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr
    assert cli.item(item.id).state == "open"


def test_remap_reprocess_after_a_rules_fix(cli: Cli) -> None:
    item = cli.items("mapping_error")[0]
    still = cli.run("remap", str(item.id), "--reprocess")
    assert still.exit_code == 1 and "still missing" in still.stderr
    fixed = fixed_rules_file(cli.folder)
    done = cli.json("remap", str(item.id), "--reprocess", CLAIMSYNC_RULES_PATH=str(fixed))
    assert done["results"][0]["state"] == "resolved" and done["results"][0]["outbox_id"]


# --------------------------------------------------------------------------- approve


def test_approve_needs_a_supervisor(cli: Cli) -> None:
    item = cli.items("approval")[0]
    denied = cli.run("approve", str(item.id))
    assert denied.exit_code == 4 and "role analyst" in denied.stderr
    assert cli.item(item.id).state == "open"
    done = cli.json("approve", str(item.id), CLAIMSYNC_ROLE="supervisor", CLAIMSYNC_OPERATOR="bob")
    assert done["role"] == "supervisor" and done["results"][0]["state"] == "resolved"


def test_approve_several_and_the_role_comes_from_the_config_file(cli: Cli) -> None:
    items = cli.items("approval")[:2]
    (cli.folder / "config.toml").write_text('[claimsync]\nrole = "supervisor"\n')
    ids = [str(i.id) for i in items]
    preview = cli.json("approve", *ids, "--dry-run", CLAIMSYNC_ROLE=None)
    assert preview["role"] == "supervisor" and preview["preview"]["count"] == 2
    done = cli.json("approve", *ids, "--yes", CLAIMSYNC_ROLE=None)
    assert [r["state"] for r in done["results"]] == ["resolved", "resolved"]


def test_a_bad_role_is_a_configuration_error(cli: Cli) -> None:
    result = cli.run("approve", str(cli.items("approval")[0].id), CLAIMSYNC_ROLE="boss")
    assert result.exit_code == 2 and "configuration error" in result.stderr


# --------------------------------------------------------------------------- write-off, reverse


def test_write_off_within_the_limit_then_reverse_it(cli: Cli) -> None:
    denial = min(cli.items("denial"), key=lambda i: i.amount)
    done = cli.json("write-off", str(denial.id), "--reason", "CO-45", "--note", "small")
    (outcome,) = done["results"]
    assert outcome["action"] == "write_off" and outcome["state"] == "written_off"
    early = cli.run("reverse", str(outcome["action_id"]), "--note", "too soon")
    assert early.exit_code == 1 and f"reverse action {outcome['action_id']}" in early.stderr
    assert cli.run("sync", "run", "--once").exit_code == 0
    balance = cli.ledger().trial_balance()
    reversed_ = cli.json("reverse", str(outcome["action_id"]), "--note", "wrong claim")
    assert reversed_["results"][0]["item_id"] == denial.id
    assert cli.item(denial.id).state == "open"
    assert cli.run("sync", "run", "--once").exit_code == 0
    assert sum(cli.ledger().trial_balance().values(), Decimal(0)) == 0
    assert cli.ledger().trial_balance() != balance


def test_over_the_limit_a_write_off_asks_for_approval_not_from_the_requester(cli: Cli) -> None:
    denial = max(cli.items("denial"), key=lambda i: i.amount)
    asked = cli.json("write-off", str(denial.id), "--reason", "CO-45", "--note", "big")
    approval = asked["results"][0]["related_item_id"]
    assert asked["results"][0]["action"] == "write_off_requested" and approval
    own = cli.run("approve", str(approval), CLAIMSYNC_ROLE="supervisor")  # alice asked
    assert own.exit_code == 4
    other = cli.run("approve", str(approval), CLAIMSYNC_ROLE="supervisor", CLAIMSYNC_OPERATOR="bob")
    assert other.exit_code == 0, other.stderr
    assert cli.item(denial.id).state == "written_off"


def test_write_off_usage_errors(cli: Cli) -> None:
    denial = cli.items("denial")[0]
    for args, message in (
        (("--reason", "NOPE", "--note", "x"), "NOPE"),
        (("--reason", "CO-45", "--note", "x", "--amount", "1.001"), "dollars and cents"),
        (("--reason", "CO-45", "--note", "x", "--amount", "-5"), "amount"),
        (("--reason", "CO-45", "--note", " "), "needs a note"),
        (("--reason", "CO-45"), "Missing option '--note'"),
    ):
        result = cli.run("write-off", str(denial.id), *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr
    assert cli.item(denial.id).state == "open"
    unknown = cli.run("reverse", "999999", "--note", "x")
    assert unknown.exit_code == 2 and "no action 999999" in unknown.stderr


# --------------------------------------------------------------------------- ignore, conflicts


def test_ignore_needs_a_note(cli: Cli) -> None:
    item = cli.items("unmatched_remittance")[0]
    assert cli.run("ignore", str(item.id), "--note", "").exit_code == 2
    result = cli.run("ignore", str(item.id), "--note", "not our patient")
    assert result.exit_code == 0 and f"work item {item.id} ignored" in result.stdout
    assert cli.item(item.id).state == "ignored"
    assert audit_rows(cli)[-1].note == "not our patient"


def test_a_stale_version_is_a_conflict(cli: Cli) -> None:
    item = cli.items("unmatched_remittance")[0]
    result = cli.run("ignore", str(item.id), "--note", "x", "--expected-version", "99")
    assert result.exit_code == 3 and "changed since you loaded it" in result.stderr
    assert cli.item(item.id).state == "open"


def test_another_operators_lease_is_a_conflict(cli: Cli) -> None:
    item = cli.items("denial")[0]
    cli.service("carol").claim_item(item.id)
    result = cli.run("write-off", str(item.id), "--reason", "CO-45", "--note", "x")
    assert result.exit_code == 3 and "being worked by carol" in result.stderr
    mine = cli.run("write-off", str(item.id), "--reason", "CO-45", "--note", "x",
                   CLAIMSYNC_OPERATOR="carol")  # fmt: skip
    assert mine.exit_code == 0, mine.stderr


# --------------------------------------------------------------------------- identity, ERP


def test_identity_from_the_option_then_the_environment_then_the_os_user(cli: Cli) -> None:
    first, second, third = cli.items("unmatched_remittance")[:3]
    cli.run("ignore", str(first.id), "--note", "x", "--operator", "dave")
    cli.run("ignore", str(second.id), "--note", "x", CLAIMSYNC_OPERATOR="erin")
    cli.run("ignore", str(third.id), "--note", "x", CLAIMSYNC_OPERATOR=None)
    assert [r.operator for r in audit_rows(cli)] == ["dave", "erin", getpass.getuser()]


def test_with_the_erp_down_actions_queue_and_sync_exits_5(cli: Cli, tmp_path: Path) -> None:
    """Actions never call the ERP (they queue in the outbox), so they work during an outage;
    ``sync run`` is what reports it, with exit 5, and posts once the ERP is back."""
    broken = tmp_path / "broken-ledger.sqlite"
    broken.write_bytes(b"this is not a ledger" * 100)
    down = {"CLAIMSYNC_LEDGER_PATH": str(broken)}
    item = cli.items("dead_letter")[0]
    assert cli.run("retry", str(item.id), **down).exit_code == 0
    result = cli.run("sync", "run", "--once", **down)
    assert result.exit_code == 5 and "ERP unavailable" in result.stderr
    no_traceback(result)
    assert cli.outbox(item.outbox_id).status == "pending"
    assert cli.run("sync", "run", "--once").exit_code == 0
    assert cli.outbox(item.outbox_id).status == "posted"


def test_an_unknown_erp_adapter_is_a_configuration_error(cli: Cli) -> None:
    result = cli.run("sync", "run", "--once", CLAIMSYNC_ERP_ADAPTER="no-such-erp")
    assert result.exit_code == 2 and "no-such-erp" in result.stderr
    no_traceback(result)
