"""The triage service: the single place where operator actions happen.

The console (#4) and the CLI (#5) both call :class:`TriageService`; neither runs SQL or holds a
business rule. Each action is one transaction that checks the state machine and the item's
version, queues the posting (transactional outbox), records the action and appends the audit
row (hash-chained), then returns an :class:`ActionResult`. Errors are typed
(``triage_model``), each with the CLI's exit code.

The state machine: ``open -> in_progress`` (``claim_item``), ``in_progress -> open``
(``release_item``), and ``open | in_progress -> resolved | written_off | ignored`` by an
action. An item need not be claimed first (a script acts on open items directly), but another
operator's live lease is a conflict. Closed items only reopen through ``reverse`` (or when the
engine reopens a dead letter that failed again).

Bulk actions take a :class:`WorkItemFilter` (or ids). A dry run returns a :class:`Preview`
(count and dollars); otherwise each item runs in its own transaction with its own outcome, so
one failure never stops the rest. A filter without states selects the open and in-progress
items; a filter without kinds gets the action's kinds (dead letters for retry, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.domain import WorkItemKind
from claimsync_console.engine import triage_actions as acts
from claimsync_console.engine import triage_money as money
from claimsync_console.engine import triage_reverse as reversal
from claimsync_console.engine import triage_write_off as writes
from claimsync_console.engine.rules import MissingRule, RulesBook
from claimsync_console.engine.triage_actions import Actor
from claimsync_console.engine.triage_model import (
    WRITE_OFF_KINDS,
    ActionResult,
    BulkResult,
    ConflictError,
    InvalidTransitionError,
    ItemOutcome,
    NotFoundError,
    PermissionDeniedError,
    Preview,
    RemapNeedsForce,
    RevealedPhi,
    TriageError,
    TriageLimits,
    UnresolvedError,
    UsageError,
    require_note,
)
from claimsync_console.store import queries_engine as qe
from claimsync_console.store.queries_engine import WorkItemFilter

__all__ = [
    "BULK_ACTIONS",
    "ROLES",
    "ActionResult",
    "BulkResult",
    "ConflictError",
    "InvalidTransitionError",
    "ItemOutcome",
    "NotFoundError",
    "PermissionDeniedError",
    "Preview",
    "RemapNeedsForce",
    "RevealedPhi",
    "TriageError",
    "TriageLimits",
    "TriageService",
    "UnresolvedError",
    "UsageError",
    "WorkItemFilter",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
ROLES = ("analyst", "supervisor")
PAGE = 500

#: Bulk actions and the kinds a filter selects for each when it names none.
BULK_ACTIONS: dict[str, tuple[str, ...]] = {
    "retry": (WorkItemKind.DEAD_LETTER.value,),
    "approve": (WorkItemKind.APPROVAL.value,),
    "reprocess": (WorkItemKind.MAPPING_ERROR.value,),
    "write_off": WRITE_OFF_KINDS,
    "ignore": (),
    "claim": (),
    "release": (),
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class TriageService:
    """Operator actions for ``operator`` acting as ``role`` (analyst or supervisor), under
    ``rules`` (write-off accounts and approval tiers). Thread-safe as long as the session
    factory is: it keeps no state between calls."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        rules: RulesBook,
        *,
        operator: str,
        role: str,
        now_fn: Callable[[], datetime] = utcnow,
        limits: TriageLimits | None = None,
    ) -> None:
        if not operator.strip():
            raise UsageError("an operator name is required (--operator or the OS user)")
        if role not in ROLES:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self.sessions = session_factory
        self.rules = rules
        self.operator = operator.strip()
        self.role = role
        self.now_fn = now_fn
        self.limits = limits or TriageLimits()

    # -- single-item actions -------------------------------------------------------------------

    def remap(
        self,
        item_id: int,
        *,
        expected_version: int | None = None,
        claim_id: int | None = None,
        reprocess: bool = False,
        note: str = "",
        force: bool = False,
    ) -> ActionResult:
        """An unmatched remittance to ``claim_id``; or, with ``reprocess``, a mapping error
        rebuilt with the current rules (UnresolvedError "still missing: carc:CO-B7" if not).

        A claim of another payer, one that already has an active payment, or one billed at
        another amount than the payment's charge is refused with RemapNeedsForce (exit 2; its
        ``problems`` list each reason) unless ``force``: then the overridden warnings are kept
        in the action and its audit row. ``remap_warnings`` asks the same question first."""
        if reprocess == (claim_id is not None):
            raise UsageError("remap needs either a claim id or reprocess=True (not both)")
        if force and reprocess:
            raise UsageError("force applies to a remap to a claim, not to reprocess")
        if reprocess:
            return self._act(
                "reprocess", money.reprocess, item_id, note=note, expected_version=expected_version
            )
        return self._act(
            "remap",
            money.remap,
            item_id,
            claim_id=claim_id,
            note=note,
            expected_version=expected_version,
            force=force,
        )

    def remap_warnings(self, item_id: int, claim_id: int) -> tuple[str, ...]:
        """What a remap of ``item_id`` to ``claim_id`` would be refused for without ``force``
        (empty: nothing), read only, so a dialog can show the reasons before the operator
        confirms. Errors as ``remap`` raises them (an unknown item or claim, a closed item)."""
        return self._run("remap_warnings", lambda s, a: money.remap_check(s, a, item_id, claim_id))

    def approve(
        self, item_id: int, *, expected_version: int | None = None, note: str = ""
    ) -> ActionResult:
        return self._act(
            "approve", money.approve, item_id, note=note, expected_version=expected_version
        )

    def write_off(
        self,
        item_id: int,
        *,
        reason: str,
        note: str,
        amount: Decimal | str | None = None,
        expected_version: int | None = None,
    ) -> ActionResult:
        """Over the role's limit the result's ``action`` is ``write_off_requested`` and
        ``related_item_id`` the approval item opened (the item itself stays open)."""
        return self._act(
            "write_off",
            writes.write_off,
            item_id,
            reason=reason,
            note=note,
            amount=amount,
            expected_version=expected_version,
        )

    def ignore(
        self, item_id: int, *, note: str, expected_version: int | None = None
    ) -> ActionResult:
        return self._act(
            "ignore", acts.ignore, item_id, note=note, expected_version=expected_version
        )

    def retry_item(self, item_id: int, *, expected_version: int | None = None) -> ActionResult:
        return self._act("retry", acts.retry, item_id, expected_version=expected_version)

    def claim_item(self, item_id: int, *, expected_version: int | None = None) -> ActionResult:
        return self._act("claim", acts.claim_item, item_id, expected_version=expected_version)

    def release_item(self, item_id: int, *, expected_version: int | None = None) -> ActionResult:
        return self._act("release", acts.release_item, item_id, expected_version=expected_version)

    def reverse(self, action_id: int, *, note: str) -> ActionResult:
        """Compensate a write-off's or an approval's posting; its item is open again."""
        return self._run("reverse", lambda s, a: reversal.reverse(s, a, action_id, note=note))

    def reveal_phi(self, item_id: int, reason: str) -> RevealedPhi:
        """The patient's name, member id and date of birth behind an item; audited."""
        return self._run("reveal_phi", lambda s, a: acts.reveal_phi(s, a, item_id, reason=reason))

    # -- bulk ----------------------------------------------------------------------------------

    def retry(
        self,
        item_ids: Sequence[int] | None = None,
        *,
        where: WorkItemFilter | None = None,
        dry_run: bool = False,
        max_items: int | None = None,
    ) -> Preview | BulkResult:
        """Retry dead letters by id, or every one a filter selects (default: all open)."""
        if item_ids is not None and where is not None:
            raise UsageError("retry takes ids or a filter, not both")
        selection = where if item_ids is None else list(item_ids)
        return self.bulk("retry", selection, dry_run=dry_run, max_items=max_items)

    def bulk(
        self,
        action: str,
        where: WorkItemFilter | Sequence[int] | None = None,
        *,
        dry_run: bool = False,
        max_items: int | None = None,
        **options: Any,
    ) -> Preview | BulkResult:
        """``action`` (one of BULK_ACTIONS) on every selected item. ``options`` are the
        action's own: ``note`` for ignore and write_off, ``reason`` for write_off (each item's
        whole amount), ``note`` for approve and reprocess."""
        wanted = self._selection(action, where)
        if dry_run:
            return self.preview(action, wanted)
        work = self._bulk_work(action, options)
        if max_items is not None and max_items < 1:
            raise UsageError(f"max_items must be at least 1, not {max_items}")
        cap = min(max_items or self.limits.max_bulk, self.limits.max_bulk)
        explicit = where is not None and not isinstance(where, WorkItemFilter)
        ids = list(wanted.ids) if explicit else self._ids(wanted, cap + 1)
        outcomes = [self._outcome(action, item_id, work) for item_id in ids[:cap]]
        log.info("triage bulk %s by %s: %s item(s)", action, self.operator, len(outcomes))
        return BulkResult(action, tuple(outcomes), truncated=len(ids) > cap)

    def preview(self, action: str, where: WorkItemFilter | Sequence[int] | None = None) -> Preview:
        wanted = self._selection(action, where)
        with self.sessions() as session:
            count, total = qe.count_work_items(session, wanted)
        ids = self._ids(wanted, self.limits.preview_ids)
        return Preview(action, count, total, tuple(ids), truncated=count > len(ids))

    def _selection(
        self, action: str, where: WorkItemFilter | Sequence[int] | None
    ) -> WorkItemFilter:
        """Explicit ids are taken as given, in their order (an unknown or wrong one fails on its
        own); a filter gets the action's kinds and the open states when it names none."""
        if action not in BULK_ACTIONS:
            raise UsageError(
                f"no bulk action {action!r}; expected one of {', '.join(BULK_ACTIONS)}"
            )
        if where is not None and not isinstance(where, WorkItemFilter):
            ids = tuple(dict.fromkeys(int(i) for i in where))
            if not ids:  # an empty filter would mean "every item"
                raise UsageError(f"{action}: no work item ids given")
            return WorkItemFilter(ids=ids)
        wanted = where or WorkItemFilter()
        kinds = BULK_ACTIONS[action]
        if kinds and wanted.kinds and not set(wanted.kinds) <= set(kinds):
            raise UsageError(f"{action} applies to {', '.join(kinds)} items, not {wanted.kinds}")
        if kinds and not wanted.kinds and not wanted.ids:
            wanted = replace(wanted, kinds=kinds)
        if not wanted.states and not wanted.ids:
            wanted = replace(wanted, states=qe.OPEN_STATES)
        return wanted

    def _ids(self, wanted: WorkItemFilter, limit: int) -> list[int]:
        """The selected ids, oldest first, keyset-paged so a big queue is never one query."""
        found: list[int] = []
        cursor: qe.PageCursor | None = None
        with self.sessions() as session:
            while len(found) < limit:
                page = qe.list_work_items(
                    session, wanted, after=cursor, limit=min(PAGE, limit - len(found))
                )
                found += [item.id for item in page.items]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        return found

    def _bulk_work(self, action: str, options: dict[str, Any]) -> Callable[..., ActionResult]:
        """The per-item function, with the options checked once rather than per item."""
        note = str(options.pop("note", "") or "")
        reason = str(options.pop("reason", "") or "") if action == "write_off" else ""
        if options:
            raise UsageError(f"{action} takes no option(s) {', '.join(sorted(options))}")
        if action in ("ignore", "write_off"):
            require_note(note, action)
        if action == "write_off" and isinstance(self.rules.write_off_account(reason), MissingRule):
            raise UsageError(f"unknown write-off reason {reason!r}")
        works: dict[str, Callable[..., ActionResult]] = {
            "retry": acts.retry,
            "approve": partial(money.approve, note=note),
            "reprocess": partial(money.reprocess, note=note),
            "write_off": partial(writes.write_off, note=note, amount=None, reason=reason),
            "ignore": partial(acts.ignore, note=note),
            "claim": acts.claim_item,
            "release": acts.release_item,
        }
        return works[action]

    def _outcome(self, action: str, item_id: int, work: Callable[..., ActionResult]) -> ItemOutcome:
        try:
            done = self._act(action, work, item_id, expected_version=None)
        except TriageError as exc:
            return ItemOutcome(item_id, error=exc.message, exit_code=exc.exit_code)
        return ItemOutcome(item_id, result=done)

    # -- transactions --------------------------------------------------------------------------

    def _act(
        self, action: str, work: Callable[..., ActionResult], item_id: int, **kwargs: Any
    ) -> ActionResult:
        done = self._run(action, lambda s, a: work(s, a, item_id, **kwargs))
        log.info("triage %s on work item %s by %s: %s", action, item_id, self.operator, done.state)
        return done

    def _run(self, action: str, work: Callable[[Session, Actor], T]) -> T:
        """One transaction: commit on success, roll back on any error."""
        now = self.now_fn()
        if now.tzinfo is None:
            raise UsageError("now_fn must return an aware UTC datetime")
        actor = Actor(self.operator, self.role, now.astimezone(UTC), self.rules, self.limits)
        try:
            with self.sessions() as session, session.begin():
                return work(session, actor)
        except qe.StaleWorkItemError as exc:
            raise ConflictError(f"{action}: {exc}; reload it") from exc
        except IntegrityError as exc:
            if "prev_hash" not in str(exc.orig):
                raise
            raise ConflictError(
                f"{action}: another action was audited at the same time; try again"
            ) from exc
