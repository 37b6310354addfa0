"""``claimsync reconcile``: each check's deposit against what was posted and what is held back.

Exit 0 when every check's unexplained variance is zero, 1 otherwise, so a month-end script can
stop on it. Held amounts (awaiting posting, dead letters, approvals, ...) are explained and do
not fail the command: they are the analysts' queues, not a hole in the books.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from claimsync_console.cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    DatabaseOption,
    JsonOption,
    fail,
    friendly_errors,
    store_session,
)
from claimsync_console.cli.output import say


def register(app: typer.Typer) -> None:
    app.command("reconcile")(reconcile)


@friendly_errors
def reconcile(
    check: Annotated[
        str | None,
        typer.Option("--check", help="Only the check or EFT with this trace number (TRN02)."),
    ] = None,
    database: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Per check (TRN02): BPR02 against posted cash, held cash by reason, and what is left."""
    from claimsync_console.engine import reconcile as engine

    with store_session(database) as session:
        checks = engine.reconcile(session, trace=check)
        quarantined = engine.quarantined_remittances(session, trace=check)
    warning = engine.quarantined_line(quarantined)
    if check is not None and not checks:
        fail(f"no check with trace number {check!r}" + (f" ({warning})" if warning else ""))
    if json_output:
        typer.echo(json.dumps(engine.report_to_json(checks, quarantined), indent=2))
    else:
        print_report(checks, warning)
    if warning:
        say(warning)  # a warning, not a failure: the exit code is the loaded checks' alone
    raise typer.Exit(EXIT_OK if all(c.balanced for c in checks) else EXIT_SOME_FAILED)


def _items(line: Any) -> str:
    """'items 12, 13 (+40 more)': the ids a line lists, and how many it leaves out."""
    ids = ", ".join(str(i) for i in line.work_item_ids)
    more = line.count - len(line.work_item_ids)
    return f"items {ids}" + (f" (+{more} more)" if more > 0 else "")


def print_report(checks: Sequence[Any], warning: str = "") -> None:
    """One row per check, its variance lines under it, then the totals per payer, then
    ``warning`` (quarantined 835 files). Every cell is plain text: a payer's name or a trace
    comes from the 835 and must never be read as rich markup."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from claimsync_console.cli.output import wide_when_piped
    from claimsync_console.engine.reconcile import grand_total, totals_by_payer

    table = Table(
        title="Per check (TRN02): BPR02 = posted + held + unexplained",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for name in ("check", "payer", "date"):
        table.add_column(name, no_wrap=True)
    for name in ("BPR02", "posted", "held", "unexplained"):
        table.add_column(name, justify="right")
    for c in checks:
        date = c.payment_date.isoformat() if c.payment_date else ""
        mark = "" if c.balanced else " !"
        table.add_row(
            *_plain(c.trace, c.payer, date, c.bpr02, c.posted, c.held_total,
                    f"{c.unexplained}{mark}"),
        )  # fmt: skip
        for line in c.variances:
            table.add_row(*_plain(f" {line.reason}", "", "", "", "", line.amount, ""), style="dim")
            if line.work_item_ids:
                table.add_row(Text(f"   {_items(line)}", overflow="fold"), style="dim")
    console = wide_when_piped()  # piped: whole cells, not `unexplai…` at 80 columns
    console.print(table)
    payers = Table(title="Per payer", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("payer", "checks", "BPR02", "posted", "held", "unexplained"):
        payers.add_column(name, justify="left" if name == "payer" else "right")
    for t in [*totals_by_payer(checks), grand_total(checks)]:
        payers.add_row(*_plain(t.key, t.checks, t.bpr02, t.posted, t.held, t.unexplained))
    console.print(payers)
    unbalanced = sum(not c.balanced for c in checks)
    console.print(
        Text(
            f"{len(checks)} check(s); "
            + (f"{unbalanced} with an unexplained variance" if unbalanced else "all reconciled")
            + (f"; {warning}" if warning else "")
        )
    )


def _plain(*cells: Any) -> list[Any]:
    """Cells as rich ``Text`` (never markup), control characters shown escaped."""
    from rich.text import Text

    from claimsync_console.cli.output import printable

    return [Text(printable(str(cell))) for cell in cells]
