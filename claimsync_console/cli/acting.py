"""The acting commands' plumbing: the triage service for one command, each item's outcome in
one JSON shape, and the preview-and-confirm step of a bulk action.

A bulk action (a filter, or more than one id) shows its preview, the count and dollars, then asks
on a terminal; without a terminal it needs ``--yes``, unless it is a ``--dry-run``. Exit codes:
a single item exits with its own error's code (2 unknown or bad argument, 3 conflict, 4
permission), a bulk run 1 when any item failed; each outcome carries its own code either way.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from claimsync_console.cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    fail,
    open_cli_store,
    settings_for,
    store_session,
)

if TYPE_CHECKING:
    from claimsync_console.engine.triage import ActionResult, Preview, TriageService

OUTCOME_KEYS = (
    "item_id", "ok", "exit_code", "error", "action", "state", "version", "action_id",
    "outbox_id", "audit_id", "related_item_id", "message",
)  # fmt: skip


class Acting:
    """The service for one command, and the store it holds open until ``close``."""

    def __init__(self, database: str | None, operator: str | None) -> None:
        from claimsync_console.cli.output import triage_errors
        from claimsync_console.engine.rules import RulesError, load_rules
        from claimsync_console.engine.triage import TriageService

        settings = settings_for(database, operator)
        try:
            rules = load_rules(settings.resolved_rules_path)
        except (RulesError, OSError) as error:
            fail(f"posting rules: {error}")
        self.operator, self.role = settings.resolved_operator, settings.role
        self.store = open_cli_store(settings)
        try:
            with triage_errors():
                self.service: TriageService = TriageService(
                    self.store.sessions, rules, operator=self.operator, role=self.role
                )
        except BaseException:
            self.store.dispose()
            raise

    def close(self) -> None:
        self.store.dispose()


def outcome_json(
    item_id: int | None, result: ActionResult | None = None, *, error: str = "", code: int = 1
) -> dict[str, Any]:
    """One item's outcome; the keys are always the same (OUTCOME_KEYS), None when unknown."""
    if result is not None:
        return {
            "item_id": result.item_id, "ok": True, "exit_code": EXIT_OK, "error": "",
            "action": result.action, "state": result.state, "version": result.version,
            "action_id": result.action_id, "outbox_id": result.outbox_id,
            "audit_id": result.audit_id, "related_item_id": result.related_item_id,
            "message": result.message,
        }  # fmt: skip
    out: dict[str, Any] = dict.fromkeys(OUTCOME_KEYS)
    out.update(item_id=item_id, ok=False, exit_code=code, error=error)
    return out


def preview_json(preview: Preview) -> dict[str, Any]:
    return {
        "count": preview.count,
        "total": preview.total,
        "ids": list(preview.ids),
        "truncated": preview.truncated,
    }


def report(
    action: str,
    session: Acting,
    outcomes: list[dict[str, Any]],
    json_output: bool,
    *,
    preview: Preview | None = None,
    dry_run: bool = False,
    truncated: bool = False,
    single: bool = False,
    subject: str = "",
) -> None:
    """Print the outcomes (stdout), each failure also on stderr, and exit: a single item exits
    with its own code (2 unknown, 3 conflict, 4 permission); a bulk run 1 if any item failed.
    A single item that failed prints no table: its one line on stderr says it all."""
    from claimsync_console.cli.output import emit_json, print_table, say

    shown = action.replace("_", "-")
    failed = [o for o in outcomes if not o["ok"]]
    if json_output:
        emit_json(
            {
                "action": action, "operator": session.operator, "role": session.role,
                "dry_run": dry_run,
                "preview": None if preview is None else preview_json(preview),
                "results": outcomes, "succeeded": len(outcomes) - len(failed),
                "failed": len(failed), "truncated": truncated,
            }
        )  # fmt: skip
    elif single and outcomes:
        if outcomes[0]["ok"]:
            typer.echo(outcomes[0]["message"])
    elif outcomes:
        print_table(
            shown,
            ("item", "result", "state", "message"),
            (
                (o["item_id"], "ok" if o["ok"] else "failed", o["state"] or "",
                 o["message"] if o["ok"] else o["error"])
                for o in outcomes
            ),
            caption=f"{len(outcomes) - len(failed)} done, {len(failed)} failed",
        )  # fmt: skip
    for outcome in failed:
        what = f"item {outcome['item_id']}" if outcome["item_id"] is not None else subject
        say(f"claimsync: {shown} {what}: {outcome['error']}")
    if truncated:
        say("claimsync: more items matched than --max allowed; run again for the rest")
    if single and failed:
        raise typer.Exit(failed[0]["exit_code"])
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def single(
    action: str, json_output: bool, database: str | None, operator: str | None, call: Any,
    item_id: int | None, subject: str = "",
) -> None:  # fmt: skip
    """Run ``call(service)`` on one item (or, for ``reverse``, one action: ``subject`` names
    it in messages) and report it."""
    from claimsync_console.engine.triage import TriageError

    session = Acting(database, operator)
    try:
        try:
            outcome = outcome_json(item_id, call(session.service))
        except TriageError as error:
            outcome = outcome_json(
                error.item_id or item_id, error=error.message, code=error.exit_code
            )
    finally:
        session.close()
    report(action, session, [outcome], json_output, single=True, subject=subject)


def capped(
    session: Acting, action: str, selection: Any, preview: Preview, max_items: int | None
) -> tuple[Any, Preview]:
    """With ``--max N`` under what matched: the first N items (the order bulk takes them in)
    as explicit ids, and their own preview, so what is shown and confirmed is what is acted on.
    Past the preview's id list (1,000) the filter and the whole preview stay."""
    if max_items is None or max_items < 1 or preview.count <= max_items:
        return selection, preview
    if isinstance(selection, list):
        first = list(dict.fromkeys(selection))[:max_items]
    elif len(preview.ids) >= max_items:
        first = list(preview.ids[:max_items])
    else:
        return selection, preview
    return first, session.service.preview(action, first)


def confirm_bulk(action: str, preview: Preview, *, yes: bool, left: int = 0) -> None:
    """Ask on a terminal; refuse (exit 2) without one unless ``--yes`` was given."""
    from claimsync_console.cli.output import money, say

    shown = ", ".join(str(i) for i in preview.ids[:20]) + (" …" if len(preview.ids) > 20 else "")
    later = f"; {left} more matched, left for a later run (--max)" if left > 0 else ""
    say(f"{action}: {preview.count} item(s), {money(preview.total)} ({shown}){later}")
    if yes:
        return
    if not sys.stdin.isatty():
        fail(
            f"{action} would change {preview.count} item(s) ({money(preview.total)}): pass --yes"
            " to go ahead (or --dry-run to preview only); there is no terminal to ask",
            EXIT_USAGE,
        )
    if not typer.confirm(f"{action} {preview.count} item(s)?", default=False, err=True):
        fail("nothing changed", EXIT_SOME_FAILED)


def bulk(
    action: str,
    selection: Any,
    *,
    session: Acting,
    json_output: bool,
    dry_run: bool,
    yes: bool,
    max_items: int | None = None,
    **options: Any,
) -> None:
    """Preview, confirm, then apply ``action`` item by item (one failure never stops the rest).
    An empty list of ids (a filter nothing passed) previews as nothing to do."""
    from claimsync_console.cli.output import triage_errors
    from claimsync_console.domain import ZERO
    from claimsync_console.engine.triage import BulkResult, Preview

    done: BulkResult | None = None
    try:
        with triage_errors():
            if isinstance(selection, list) and not selection:
                preview = Preview(action, 0, ZERO, ())
            else:
                preview = session.service.preview(action, selection)
            matched = preview.count
            selection, preview = capped(session, action, selection, preview, max_items)
            if not dry_run and preview.count > 0:
                confirm_bulk(
                    action.replace("_", "-"), preview, yes=yes, left=matched - preview.count
                )
                applied = session.service.bulk(action, selection, max_items=max_items, **options)
                done = applied if isinstance(applied, BulkResult) else None
    finally:
        session.close()
    if done is None and not json_output:
        print_preview(action, preview)
        raise typer.Exit(EXIT_OK)
    outcomes = [
        outcome_json(o.item_id, o.result)
        if o.ok
        else outcome_json(o.item_id, error=o.error, code=o.exit_code)
        for o in (done.outcomes if done is not None else ())
    ]
    report(
        action, session, outcomes, json_output, preview=preview, dry_run=dry_run,
        truncated=bool(done is not None and (done.truncated or matched > preview.count)),
    )  # fmt: skip


def print_preview(action: str, preview: Preview) -> None:
    from claimsync_console.cli.output import money

    typer.echo(f"{action}: {preview.count} item(s), {money(preview.total)}; nothing changed")
    if preview.ids:
        more = " …" if preview.truncated else ""
        typer.echo("items: " + ", ".join(str(i) for i in preview.ids) + more)


def resolve(query: Any, database: str | None) -> Any:
    """The filter itself when the database can apply it whole (so a preview counts a queue of
    any size), else the ids of the items that pass the row-level conditions (maybe none)."""
    if not query.narrowing:
        return query.where
    from claimsync_console.engine.item_detail import find_ids
    from claimsync_console.engine.triage import TriageLimits

    with store_session(database) as session:
        return find_ids(session, query, limit=TriageLimits().max_bulk)
