"""``claimsync items list`` and ``claimsync items show``: the work queues, for scripts.

The selection options (``--queue``, ``--payer``, ``--older-than``, ``--error-contains``,
``--min-amount``) are declared here once and shared with the bulk actions (``retry``), so a
runbook can list a selection and then act on exactly the same one.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from claimsync_console.cli.common import (
    DatabaseOption,
    JsonOption,
    friendly_errors,
    store_session,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from claimsync_console.engine.item_detail import ItemQuery

items_app = typer.Typer(help="Read the work queues.", no_args_is_help=True)

QUEUE_HELP = "unmatched, dead-letter, mapping, approval, denial or rejected"
QueueOption = Annotated[
    str | None, typer.Option("--queue", help=f"The queue: {QUEUE_HELP}.", show_default=False)
]
PayerOption = Annotated[
    str | None,
    typer.Option(
        "--payer",
        help="Payer id (835 N1*PR / REF*2U) or a piece of the payer's name (acme).",
        show_default=False,
    ),
]
OlderThanOption = Annotated[
    str | None,
    typer.Option(
        "--older-than", help="Only items opened longer ago (30m, 2h, 3d).", show_default=False
    ),
]
ErrorContainsOption = Annotated[
    str | None,
    typer.Option(
        "--error-contains", help="Only items whose error has this text.", show_default=False
    ),
]
MinAmountOption = Annotated[
    str | None,
    typer.Option(
        "--min-amount", help="Only items of at least this many dollars.", show_default=False
    ),
]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV to stdout.")]

ITEM_COLUMNS = (
    "id", "queue", "kind", "state", "version", "amount", "payer_id", "payer_name",
    "patient_control_number", "trace_number", "error", "error_signature", "claim_payment_id",
    "claim_id", "remittance_id", "outbox_id", "assigned_to", "lease_expires_at", "requested_by",
    "created_at", "updated_at", "resolved_at", "age_seconds", "pending_approval",
)  # fmt: skip


def register(app: typer.Typer) -> None:
    items_app.command("list")(list_items)
    items_app.command("show")(show_item)
    app.add_typer(items_app, name="items")


def build_query(
    *,
    now: datetime,
    queue: str | None = None,
    payer: str | None = None,
    older_than: str | None = None,
    error_contains: str | None = None,
    min_amount: str | None = None,
    states: list[str] | None = None,
    kinds: tuple[str, ...] = (),
    session: Session | None = None,
) -> ItemQuery:
    """The options as an engine query; a bad value is a usage error (exit 2). With a
    ``session``, ``--payer`` also takes a piece of a payer's name, as the console's ``payer:``
    does (``resolve_payer``: one payer becomes its id, several exit 2 naming them)."""
    from claimsync_console.cli.output import parse_amount, parse_duration, triage_errors
    from claimsync_console.engine.item_detail import (
        ItemQuery,
        kind_for_queue,
        resolve_payer,
        state_for,
    )
    from claimsync_console.engine.workitems import normalise_payer_id
    from claimsync_console.store.queries_engine import OPEN_STATES, WorkItemFilter

    with triage_errors():
        wanted_kinds = (kind_for_queue(queue),) if queue else kinds
        wanted_states = tuple(state_for(s) for s in states) if states else OPEN_STATES
        if payer and session is not None:
            payer = resolve_payer(session, payer.strip(), said=f"--payer {payer}")
    where = WorkItemFilter(
        kinds=wanted_kinds,
        states=wanted_states,
        payer_id=normalise_payer_id(payer) if payer else None,
        min_amount=parse_amount(min_amount, "--min-amount") if min_amount else None,
    )
    cutoff = now - parse_duration(older_than, "--older-than") if older_than else None
    return ItemQuery(where, cutoff, error_contains or None)


@friendly_errors
def list_items(
    queue: QueueOption = None,
    payer: PayerOption = None,
    older_than: OlderThanOption = None,
    error_contains: ErrorContainsOption = None,
    min_amount: MinAmountOption = None,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            help="open, in-progress, resolved, written-off or ignored; repeatable "
            "(default: open and in-progress).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most N items.")] = 50,
    database: DatabaseOption = None,
    json_output: JsonOption = False,
    csv_output: CsvOption = False,
) -> None:
    """List work items, oldest first."""
    from datetime import UTC

    from claimsync_console.cli.output import emit_csv, emit_json, output_format
    from claimsync_console.engine.item_detail import find_items, item_json, pending_approvals

    fmt = output_format(json_output, csv_output)
    now = datetime.now(UTC)
    with store_session(database) as session:
        query = build_query(
            now=now, queue=queue, payer=payer, older_than=older_than,
            error_contains=error_contains, min_amount=min_amount, states=state, session=session,
        )  # fmt: skip
        page = find_items(session, query, limit=limit)
        pending = pending_approvals(session, page.items)
        rows = [item_json(item, now, pending) for item in page.items]
    if fmt == "csv":
        emit_csv(ITEM_COLUMNS, rows)
    elif fmt == "json":
        emit_json(list_json(rows, page.more, queue, query))
    else:
        print_items(rows, page.more, queue)


def list_json(
    rows: list[dict[str, Any]], more: bool, queue: str | None, query: Any
) -> dict[str, Any]:
    from decimal import Decimal

    where = query.where
    return {
        "queue": queue,
        "filters": {
            "payer": where.payer_id,
            "states": list(where.states),
            "created_before": query.created_before,
            "error_contains": query.error_contains,
            "min_amount": where.min_amount,
        },
        "count": len(rows),
        "total": sum((Decimal(r["amount"]) for r in rows), Decimal("0.00")),
        "more": more,
        "items": rows,
    }


def print_items(rows: list[dict[str, Any]], more: bool, queue: str | None) -> None:
    from decimal import Decimal

    from claimsync_console.cli.output import format_age, money, print_table, say, shorten

    total = sum((Decimal(r["amount"]) for r in rows), Decimal("0.00"))
    print_table(
        f"{queue or 'all'} queue" if queue else "work items",
        ("id", "queue", "state", "payer", "claim", "amount", "age", "error"),
        (
            (
                r["id"], r["queue"], _state(r), r["payer_id"], r["patient_control_number"],
                money(r["amount"]), format_age(r["age_seconds"]), shorten(r["error"], 50),
            )
            for r in rows
        ),
        right=("id", "amount", "age"),
        caption=f"{len(rows)} item(s), {money(total)}",
    )  # fmt: skip
    if more:
        say(f"more items match: raise --limit (now {len(rows)}) or narrow the filters")


def _state(row: dict[str, Any]) -> str:
    """``open · approval 63 pending`` for an item whose write-off waits for a supervisor."""
    waits = row.get("pending_approval")
    return row["state"] if waits is None else f"{row['state']} · approval {waits} pending"


@friendly_errors
def show_item(
    item_id: Annotated[int, typer.Argument(help="The work item's id.", show_default=False)],
    database: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """One item: its fields, the payer's raw segments (names masked), the matcher's candidates,
    its history, the actions taken on it and its posting attempts."""
    from claimsync_console.cli.output import emit_json, triage_errors
    from claimsync_console.engine.item_detail import item_detail

    with store_session(database) as session, triage_errors():
        detail = item_detail(session, item_id)
    if json_output:
        emit_json(detail)
    else:
        print_detail(detail)


def print_detail(detail: dict[str, Any]) -> None:
    from claimsync_console.cli.output import format_age, money, print_table, printable

    item = detail["item"]
    typer.echo(
        f"work item {item['id']}: {item['queue']} · {item['state']} · version {item['version']}"
        f" · {money(item['amount'])}"
    )
    for label, key in (
        ("payer", "payer_id"), ("claim", "patient_control_number"), ("trace", "trace_number"),
        ("error", "error"), ("assigned to", "assigned_to"), ("requested by", "requested_by"),
    ):  # fmt: skip
        if item.get(key):
            typer.echo(f"  {label}: {printable(str(item[key]))}")
    typer.echo(f"  opened {item['created_at']} ({format_age(item['age_seconds'])} ago)")
    for line in _approval_lines(item):
        typer.echo(f"  {printable(line)}")
    source = detail["source"]
    if source is not None:
        typer.echo(f"\nsource: {printable(source['file_name'])} ({source['kind']})")
        for segment in detail["segments"]:
            typer.echo(f"  {segment['index']:>6}  {printable(segment['text'])}")
        if detail["segments_truncated"]:
            typer.echo("  … (more segments)")
    if detail["candidates"]:
        print_table(
            "candidates",
            ("claim id", "claim", "payer", "billed", "service from", "score", "why"),
            (
                (c.get("claim_id"), c.get("patient_control_number"), c.get("payer_id"),
                 c.get("billed_amount"), c.get("service_date_from"), c.get("score"),
                 "; ".join(c.get("reasons", [])))
                for c in detail["candidates"]
            ),
            right=("claim id", "billed", "score"),
        )  # fmt: skip
    _print_history(detail)


def _approval_lines(item: dict[str, Any]) -> list[str]:
    """What holds the item back or why it needs a supervisor: a denial's write-off waiting for
    approval, an approval's limit, and an amount beyond every tier (flagged, not blocked)."""
    from claimsync_console.cli.output import money
    from claimsync_console.engine.triage_model import beyond_limits

    details = item.get("details") or {}
    lines = []
    if item.get("pending_approval") is not None:
        lines.append(
            f"write-off waiting for approval: work item {item['pending_approval']}"
            " (approve or ignore it before acting on this item)"
        )
    if item["kind"] == "approval" and details.get("threshold"):
        role = details.get("required_role") or "supervisor"
        lines.append(f"approval: over the limit of {money(details['threshold'])}: a {role} decides")
    if flagged := beyond_limits(details, money):
        lines.append(flagged)
    return lines


def _print_history(detail: dict[str, Any]) -> None:
    from claimsync_console.cli.output import print_table, short_time

    if detail["history"]:
        print_table(
            "history (UTC)",
            ("audit", "at", "operator", "action", "state", "reason", "note"),
            (
                (h["id"], short_time(h["at"]), f"{h['operator']} ({h['role']})", h["action"],
                 _transition(h), h["reason"], h["note"])
                for h in detail["history"]
            ),
        )  # fmt: skip
    if detail["actions"]:
        print_table(
            "actions (reverse takes these ids)",
            ("action id", "action", "operator", "at", "outbox", "reversed by"),
            (
                (a["id"], a["action"], a["operator"], short_time(a["created_at"]), a["outbox_id"],
                 a["reversed_by_action_id"])
                for a in detail["actions"]
            ),
        )  # fmt: skip
    outbox = detail["outbox"]
    if outbox is not None:
        typer.echo(
            f"\nposting: outbox {outbox['id']} {outbox['status']}, {outbox['attempts']} attempt(s)"
            f"{', ' + outbox['erp_reference'] if outbox['erp_reference'] else ''}"
        )
    if detail["attempts"]:
        print_table(
            "attempts",
            ("at", "outcome", "error", "ms"),
            (
                (short_time(a["at"]), a["outcome"], a["error"], a["latency_ms"])
                for a in detail["attempts"]
            ),
        )


def _transition(row: dict[str, Any]) -> str:
    before = (row.get("before") or {}).get("state")
    after = (row.get("after") or {}).get("state")
    if before and after and before != after:
        return f"{before} → {after}"
    return after or before or ""
