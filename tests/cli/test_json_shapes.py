"""The ``--json`` output of the triage commands, pinned: every key and its type.

Scripts rely on these shapes (docs/cli.md promises that fields are only ever added), so a
renamed or retyped field must fail here first. Money is always a decimal string with two places,
never a float; times are ISO 8601 UTC strings. Every key pinned here must also be documented in
docs/cli.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from claimsync_console.cli.acting import OUTCOME_KEYS
from claimsync_console.engine.rules import sample_rules_path
from tests.cli.triage_cli import (  # noqa: F401 - the fixtures are used by name
    Cli,
    cli_fixture,
    cli_template_fixture,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
Check = Callable[[Any], bool]


def money(value: Any) -> bool:
    return isinstance(value, str) and Decimal(value) == Decimal(value).quantize(Decimal("0.01"))


def iso(value: Any) -> bool:
    return isinstance(value, str) and datetime.fromisoformat(value).utcoffset() is not None


def of(*types: type) -> Check:
    return lambda value: (
        isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    )


def nullable(check: Check) -> Check:
    return lambda value: value is None or check(value)


def list_of(check: Check) -> Check:
    return lambda value: isinstance(value, list) and all(check(v) for v in value)


INT, STR, BOOL, DICT, LIST = of(int), of(str), of(bool), of(dict), of(list)

ITEM: dict[str, Check] = {
    "id": INT, "queue": STR, "kind": STR, "state": STR, "version": INT, "amount": money,
    "payer_id": STR, "payer_name": STR, "patient_control_number": STR, "trace_number": STR,
    "error": STR, "error_signature": STR, "claim_payment_id": nullable(INT),
    "claim_id": nullable(INT), "remittance_id": nullable(INT), "outbox_id": nullable(INT),
    "assigned_to": nullable(STR), "lease_expires_at": nullable(iso),
    "requested_by": nullable(STR), "created_at": iso, "updated_at": iso,
    "resolved_at": nullable(iso), "age_seconds": INT, "pending_approval": nullable(INT),
}  # fmt: skip
ITEMS_LIST: dict[str, Check] = {
    "queue": nullable(STR), "filters": DICT, "count": INT, "total": money, "more": BOOL,
    "items": LIST,
}  # fmt: skip
FILTERS: dict[str, Check] = {
    "payer": nullable(STR), "states": list_of(STR), "created_before": nullable(iso),
    "error_contains": nullable(STR), "min_amount": nullable(money),
}  # fmt: skip
DETAIL: dict[str, Check] = {
    "item": DICT, "source": nullable(DICT), "segments": LIST, "segments_truncated": BOOL,
    "candidates": LIST, "history": LIST, "actions": LIST, "outbox": nullable(DICT),
    "attempts": LIST,
}  # fmt: skip
SOURCE: dict[str, Check] = {
    "kind": STR, "file_id": INT, "file_name": STR, "sha256": STR, "segment_start": INT,
    "segment_end": nullable(INT),
}  # fmt: skip
SEGMENT: dict[str, Check] = {"index": INT, "id": STR, "text": STR}
OUTBOX: dict[str, Check] = {
    "id": INT, "kind": STR, "status": STR, "idempotency_key": STR, "amount": money,
    "cash_amount": money, "attempts": INT, "next_attempt_at": nullable(iso),
    "last_error": nullable(STR), "erp_reference": nullable(STR), "posted_at": nullable(iso),
}  # fmt: skip
ATTEMPT: dict[str, Check] = {
    "at": iso, "outcome": STR, "error": nullable(STR), "latency_ms": nullable(INT),
}  # fmt: skip
ACTION: dict[str, Check] = {
    "id": INT, "action": STR, "operator": STR, "role": STR, "created_at": iso,
    "outbox_id": nullable(INT), "reverses_action_id": nullable(INT),
    "reversed_by_action_id": nullable(INT), "payload": nullable(DICT),
}  # fmt: skip
REPORT: dict[str, Check] = {
    "action": STR, "operator": STR, "role": STR, "dry_run": BOOL, "preview": nullable(DICT),
    "results": LIST, "succeeded": INT, "failed": INT, "truncated": BOOL,
}  # fmt: skip
PREVIEW: dict[str, Check] = {"count": INT, "total": money, "ids": list_of(INT), "truncated": BOOL}
OUTCOME: dict[str, Check] = {
    "item_id": nullable(INT), "ok": BOOL, "exit_code": INT, "error": STR,
    "action": nullable(STR), "state": nullable(STR), "version": nullable(INT),
    "action_id": nullable(INT), "outbox_id": nullable(INT), "audit_id": nullable(INT),
    "related_item_id": nullable(INT), "message": nullable(STR),
}  # fmt: skip
AUDIT_LIST: dict[str, Check] = {"count": INT, "more": BOOL, "rows": LIST}
AUDIT_ROW: dict[str, Check] = {
    "id": INT, "at": iso, "operator": STR, "role": STR, "action": STR,
    "work_item_id": nullable(INT), "target": STR, "reason": STR, "note": STR,
    "before": nullable(DICT), "after": nullable(DICT), "prev_hash": STR, "hash": STR,
}  # fmt: skip
VERIFY: dict[str, Check] = {
    "intact": BOOL, "rows": INT, "first_broken_id": nullable(INT),
    "first_broken": nullable(DICT), "why": STR, "head": nullable(STR),
}  # fmt: skip
RULES: dict[str, Check] = {
    "file": STR, "valid": BOOL, "problems": LIST, "summary": nullable(DICT),
}  # fmt: skip
RULES_SUMMARY: dict[str, Check] = {
    "payers": INT, "facilities": INT, "adjustments": INT, "plb": INT, "write_offs": INT,
    "approval_rules": INT, "digest": STR,
}  # fmt: skip
STATUS: dict[str, Check] = {
    "files": DICT, "claims": INT, "billed_total": money, "acknowledgements": DICT,
    "remittances": INT, "payment_total": money, "claim_payments": INT, "paid_total": money,
    "dashboard": DICT,
}  # fmt: skip
DASHBOARD: dict[str, Check] = {
    "at": iso, "stages": DICT, "outbox": DICT, "postings_per_minute": list_of(INT),
    "adapters": LIST, "queues": DICT, "aging": DICT, "aging_by_queue": DICT,
}  # fmt: skip
MATCHING = (
    "matched", "unmatched", "ambiguous", "reversals_linked", "reversal_orphans", "with_warnings",
    "denials_opened", "acks", "rejections_opened", "resolved_on_retry",
)  # fmt: skip
POSTING = (
    "considered", "enqueued", "reversals", "plb_enqueued", "mapping_errors", "out_of_balance",
    "approvals", "nothing_to_post",
)  # fmt: skip
REPROCESS = (
    "considered", "resolved", "enqueued", "approvals", "still_missing", "out_of_balance",
    "conflicts",
)  # fmt: skip
SYNC_RUN: dict[str, Check] = {
    **{f"matching_{key}": INT for key in MATCHING},
    **{f"posting_{key}": INT for key in POSTING}, "posting_cash_enqueued": money,
    **{f"reprocess_{key}": INT for key in REPROCESS},
    "claimed": INT, "posted": INT, "duplicates": INT, "retried": INT, "dead": INT,
    "released": INT, "lost_leases": INT, "posted_amount": money, "breaker_blocked": BOOL,
    "breaker_retry_at": nullable(iso), "next_wakeup": nullable(iso),
    "dead_letter_ids": list_of(INT),
}  # fmt: skip

ALL_SHAPES = (
    ITEM, ITEMS_LIST, FILTERS, DETAIL, SOURCE, SEGMENT, OUTBOX, ATTEMPT, ACTION, REPORT, PREVIEW,
    OUTCOME, AUDIT_LIST, AUDIT_ROW, VERIFY, RULES, RULES_SUMMARY, STATUS, DASHBOARD, SYNC_RUN,
)  # fmt: skip


def shaped(value: Any, shape: dict[str, Check]) -> None:
    assert isinstance(value, dict), value
    assert list(value) == list(shape), f"keys changed: {list(value)}"
    wrong = {key: value[key] for key, check in shape.items() if not check(value[key])}
    assert not wrong, f"wrong types: {wrong}"


def test_items_list_and_show(cli: Cli) -> None:
    listing = cli.json("items", "list", "--queue", "dead-letter", "--min-amount", "1")
    shaped(listing, ITEMS_LIST)
    shaped(listing["filters"], FILTERS)
    for row in listing["items"]:
        shaped(row, ITEM)
    item = listing["items"][0]["id"]
    assert cli.run("retry", str(item)).exit_code == 0
    detail = cli.json("items", "show", str(item))
    shaped(detail, DETAIL)
    shaped({k: v for k, v in detail["item"].items() if k != "details"}, ITEM)
    assert isinstance(detail["item"]["details"], dict)
    shaped(detail["source"], SOURCE)
    for segment in detail["segments"]:
        shaped(segment, SEGMENT)
    shaped(detail["outbox"], OUTBOX)
    for attempt in detail["attempts"]:
        shaped(attempt, ATTEMPT)
    for action in detail["actions"]:
        shaped(action, ACTION)
    for row in detail["history"]:
        shaped(row, AUDIT_ROW)
    assert detail["actions"] and detail["history"]


def test_action_reports_single_bulk_and_failed(cli: Cli) -> None:
    first, second = cli.items("dead_letter")[:2]
    single = cli.json("retry", str(first.id))
    shaped(single, REPORT)
    assert single["preview"] is None
    shaped(single["results"][0], OUTCOME)
    bulk = cli.json("retry", str(first.id), str(second.id), "--yes", code=1)
    shaped(bulk, REPORT)
    shaped(bulk["preview"], PREVIEW)
    assert [r["ok"] for r in bulk["results"]] == [False, True]
    for outcome in bulk["results"]:
        shaped(outcome, OUTCOME)
    assert tuple(OUTCOME) == OUTCOME_KEYS
    unknown = cli.json("ignore", "999999", "--note", "x", code=2)
    shaped(unknown["results"][0], OUTCOME)
    dry = cli.json("retry", "--queue", "dead-letter", "--dry-run")
    shaped(dry, REPORT)
    shaped(dry["preview"], PREVIEW)


def test_audit_and_rules(cli: Cli) -> None:
    assert cli.run("retry", str(cli.items("dead_letter")[0].id)).exit_code == 0
    listing = cli.json("audit", "list")
    shaped(listing, AUDIT_LIST)
    for row in listing["rows"]:
        shaped(row, AUDIT_ROW)
    lines = cli.run("audit", "export", "--json").stdout.splitlines()
    for line in lines:
        shaped(json.loads(line), AUDIT_ROW)
    shaped(cli.json("audit", "verify"), VERIFY)
    rules = cli.json("rules", "check", str(sample_rules_path()))
    shaped(rules, RULES)
    shaped(rules["summary"], RULES_SUMMARY)


def test_status(cli: Cli) -> None:
    status = cli.json("status")
    shaped(status, STATUS)
    shaped(status["dashboard"], DASHBOARD)
    for tile in status["dashboard"]["queues"].values():
        assert money(tile["amount"]) and of(int)(tile["count"])


def test_sync_run(cli: Cli) -> None:
    """Lists are JSON arrays (``dead_letter_ids`` was the string ``"[89, 90]"``), amounts
    decimal strings, times ISO or null."""
    result = cli.run("sync", "run", "--once", "--json")
    assert result.exit_code in (0, 1), (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    shaped(report, SYNC_RUN)
    assert len(report["dead_letter_ids"]) == report["dead"]


def test_every_pinned_key_is_documented() -> None:
    spans = re.findall(r"`([^`\n]+)`", DOCS.read_text(encoding="utf-8"))
    documented = {word for span in spans for word in re.findall(r"[a-z_0-9]+", span)}
    missing = sorted({key for shape in ALL_SHAPES for key in shape} - documented)
    assert not missing, f"docs/cli.md does not name: {missing}"
