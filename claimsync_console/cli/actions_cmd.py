"""The acting commands: ``retry``, ``remap``, ``approve``, ``write-off``, ``reverse``, ``ignore``.

Each is a thin call into :class:`~claimsync_console.engine.triage.TriageService`, under the
operator's identity (``--operator``, ``CLAIMSYNC_OPERATOR``, else the OS user) and role
(``CLAIMSYNC_ROLE``), so a script gets exactly the console's rules and role checks. Every command
reports one outcome per item, in one JSON shape (``--json``); see docs/cli.md.

A bulk action (a filter, or more than one id) first shows its preview and asks (``acting``).
No command here posts to the ERP synchronously: postings go through the outbox, so an ERP
outage shows up later as dead letters (and ``sync run`` exits 5), never as a half-done action.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from claimsync_console.cli.acting import Acting, bulk, resolve, single
from claimsync_console.cli.common import (
    EXIT_USAGE,
    DatabaseOption,
    JsonOption,
    OperatorOption,
    fail,
    friendly_errors,
    store_session,
)
from claimsync_console.cli.items_cmd import (
    ErrorContainsOption,
    MinAmountOption,
    OlderThanOption,
    PayerOption,
    QueueOption,
)

NoteOption = Annotated[str, typer.Option("--note", help="Why (kept in the audit trail).")]
ExpectedVersionOption = Annotated[
    int | None,
    typer.Option(
        "--expected-version",
        help="Fail with exit 3 if the item changed since you saw this version.",
        show_default=False,
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Apply a bulk action unasked.")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
]
ItemIdArgument = Annotated[int, typer.Argument(help="The work item's id.", show_default=False)]


def register(app: typer.Typer) -> None:
    app.command("retry")(retry)
    app.command("remap")(remap)
    app.command("approve")(approve)
    app.command("write-off")(write_off)
    app.command("reverse")(reverse)
    app.command("ignore")(ignore)


# -- the commands ------------------------------------------------------------------------------


@friendly_errors
def retry(
    item_ids: Annotated[
        list[int] | None, typer.Argument(help="Dead-letter item ids.", show_default=False)
    ] = None,
    queue: QueueOption = None,
    payer: PayerOption = None,
    older_than: OlderThanOption = None,
    error_contains: ErrorContainsOption = None,
    min_amount: MinAmountOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    max_items: Annotated[
        int | None, typer.Option("--max", min=1, help="Retry at most N items.", show_default=False)
    ] = None,
    database: DatabaseOption = None,
    operator: OperatorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Queue dead letters' postings for the ERP again, by id or by filter."""
    from datetime import UTC, datetime
    from functools import partial

    from claimsync_console.cli.items_cmd import build_query

    filtered = any(v is not None for v in (queue, payer, older_than, error_contains, min_amount))
    if item_ids and filtered:
        fail("give item ids or filters (--queue ...), not both")
    if not item_ids and not filtered:
        fail("retry what? name item ids, or select with --queue dead-letter")
    if item_ids and len(item_ids) == 1 and not dry_run:
        only = item_ids[0]
        single("retry", json_output, database, operator, lambda s: s.retry_item(only), only)
        return
    selection: Any = list(item_ids or [])
    if filtered:
        if queue not in (None, "dead-letter"):
            fail(f"retry applies to the dead-letter queue, not {queue!r}")
        wanted = partial(
            build_query, now=datetime.now(UTC), queue="dead-letter", payer=payer,
            older_than=older_than, error_contains=error_contains, min_amount=min_amount,
        )  # fmt: skip
        if payer:  # a piece of a payer's name is looked up, as items list does
            with store_session(database) as reading:
                query = wanted(session=reading)
        else:
            query = wanted()
        selection = resolve(query, database)
    session = Acting(database, operator)
    bulk(
        "retry", selection, session=session, json_output=json_output, dry_run=dry_run, yes=yes,
        max_items=max_items,
    )  # fmt: skip


@friendly_errors
def remap(
    item_id: ItemIdArgument,
    claim: Annotated[
        int | None, typer.Option("--claim", help="The claim's id.", show_default=False)
    ] = None,
    reprocess: Annotated[
        bool, typer.Option("--reprocess", help="Rebuild a mapping error with the current rules.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Remap even to a claim of another payer, already paid, or billed at another"
            " amount (the overridden warnings are audited).",
        ),
    ] = False,
    note: NoteOption = "",
    expected_version: ExpectedVersionOption = None,
    database: DatabaseOption = None,
    operator: OperatorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Match an unmatched payment to a claim (--claim), or repost a mapping error (--reprocess).

    A claim of another payer, one already paid, or one billed at another amount than the
    payment's charge is refused (exit 2, each reason on stderr) unless --force is given.
    --reprocess rebuilds the posting with the current rules, after a rules fix; it fails (exit 1)
    naming what is still missing."""
    if (claim is None) == (not reprocess):
        fail("remap needs --claim CLAIM_ID or --reprocess (one of them)")
    if force and reprocess:
        fail("--force applies to --claim, not to --reprocess")
    single(
        "remap", json_output, database, operator,
        lambda s: s.remap(
            item_id, expected_version=expected_version, claim_id=claim, reprocess=reprocess,
            note=note, force=force,
        ),
        item_id,
    )  # fmt: skip


@friendly_errors
def approve(
    item_ids: Annotated[list[int], typer.Argument(help="Approval item ids.", show_default=False)],
    note: NoteOption = "",
    expected_version: ExpectedVersionOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    database: DatabaseOption = None,
    operator: OperatorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Approve postings held for approval (never your own request)."""
    if len(item_ids) == 1 and not dry_run:
        only = item_ids[0]
        single(
            "approve", json_output, database, operator,
            lambda s: s.approve(only, expected_version=expected_version, note=note), only,
        )  # fmt: skip
        return
    if expected_version is not None:
        fail("--expected-version applies to one item")
    session = Acting(database, operator)
    bulk(
        "approve", item_ids, session=session, json_output=json_output, dry_run=dry_run, yes=yes,
        note=note,
    )  # fmt: skip


@friendly_errors
def write_off(
    item_id: ItemIdArgument,
    reason: Annotated[
        str,
        typer.Option("--reason", help="A write-off reason of the rules (CO-45, small_balance)."),
    ],
    note: NoteOption,
    amount: Annotated[
        str | None,
        typer.Option(
            "--amount",
            help="Part of the item's open amount, in dollars and cents such as 100.50 or"
            " $1,234.50 (default: all of it). Less than all of it leaves the item open with"
            " the rest.",
            show_default=False,
        ),
    ] = None,
    expected_version: ExpectedVersionOption = None,
    database: DatabaseOption = None,
    operator: OperatorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write off a denial or a rejected claim; above your limit it asks for approval instead.

    A partial --amount leaves the item open with the remainder; all of it closes the item."""
    from claimsync_console.engine.triage_model import UsageError, parse_write_off_amount

    try:  # the same check as the service's and the console's, before opening the store
        value = parse_write_off_amount(amount) if amount is not None else None
    except UsageError as error:
        fail(f"--amount: {error.message}", EXIT_USAGE)
    single(
        "write_off", json_output, database, operator,
        lambda s: s.write_off(
            item_id, reason=reason, note=note, amount=value, expected_version=expected_version
        ),
        item_id,
    )  # fmt: skip


@friendly_errors
def reverse(
    action_id: Annotated[
        int, typer.Argument(help="The action's id (items show lists them).", show_default=False)
    ],
    note: NoteOption,
    database: DatabaseOption = None,
    operator: OperatorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Undo a write-off or an approval with a compensating entry; its item opens again."""
    single(
        "reverse", json_output, database, operator,
        lambda s: s.reverse(action_id, note=note), None, subject=f"action {action_id}",
    )  # fmt: skip


@friendly_errors
def ignore(
    item_id: ItemIdArgument,
    note: NoteOption,
    expected_version: ExpectedVersionOption = None,
    database: DatabaseOption = None,
    operator: OperatorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Close an item without posting (not our claim, a duplicate)."""
    single(
        "ignore", json_output, database, operator,
        lambda s: s.ignore(item_id, note=note, expected_version=expected_version),
        item_id,
    )  # fmt: skip
