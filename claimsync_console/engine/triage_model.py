"""The triage service's vocabulary: typed errors, results, the state machine and the role checks.

Kept apart from the actions so that the console and the CLI can import the errors and results
(to render them) without pulling in the engine. Nothing here touches a database.

Exit codes follow the CLI's table (issue #5): 1 for an action that could not be done on an item
(an invalid transition, rules that still miss something: in a bulk run these are the per-item
failures that make the whole run exit 1), 2 for a usage error (an unknown id, a missing note, an
unknown reason), 3 for a conflict, 4 for a missing permission.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from claimsync_console.domain import CENT, ZERO, WorkItemKind, WorkItemState, dollars
from claimsync_console.engine.rules import RulesBook
from claimsync_console.store.models_engine import WorkItem

OPEN = WorkItemState.OPEN.value
IN_PROGRESS = WorkItemState.IN_PROGRESS.value
RESOLVED = WorkItemState.RESOLVED.value
WRITTEN_OFF = WorkItemState.WRITTEN_OFF.value
IGNORED = WorkItemState.IGNORED.value
ACTIVE_STATES = (OPEN, IN_PROGRESS)

#: Items that keep a receivable open, so that writing them off is meaningful. An unmatched
#: remittance is cash received (remap or ignore it), a dead letter or mapping error holds a
#: posting (retry or reprocess it), an approval is approved or ignored.
WRITE_OFF_KINDS = (WorkItemKind.DENIAL.value, WorkItemKind.REJECTED_CLAIM.value)


# -- errors ------------------------------------------------------------------------------------


class TriageError(Exception):
    """Base of every error the service raises on purpose; ``exit_code`` is the CLI's."""

    exit_code = 1

    def __init__(self, message: str, *, item_id: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.item_id = item_id


class InvalidTransitionError(TriageError):
    """The item is not in a state (or of a kind) that the action applies to."""

    exit_code = 1


class UnresolvedError(TriageError):
    """The action ran but could not resolve the item (rules still missing something)."""

    exit_code = 1


class UsageError(TriageError):
    """A wrong argument: a missing note, an unknown reason, an amount out of range."""

    exit_code = 2


class NotFoundError(UsageError):
    """No such work item, claim or action."""

    exit_code = 2


class RemapNeedsForce(UsageError):
    """A remap whose claim looks wrong for the payment (another payer, already paid, another
    charge): refused unless the caller passes ``force=True``. A usage error (exit 2), like a
    bulk action without ``--yes``: nothing is wrong with the item, the caller must say "yes, I
    mean it". ``problems`` lists each reason, one sentence each, for a dialog to show."""

    exit_code = 2

    def __init__(self, item_id: int, claim_id: int, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        self.claim_id = claim_id
        super().__init__(
            f"remap of work item {item_id} to claim {claim_id} refused: "
            + "; ".join(self.problems)
            + " (force the remap, --force, to go ahead anyway)",
            item_id=item_id,
        )


class ConflictError(TriageError):
    """Someone else changed the item (its version moved) or holds its lease."""

    exit_code = 3


class PermissionDeniedError(TriageError):
    """The operator's role may not do this (or they may not approve their own request)."""

    exit_code = 4


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What one action did. ``action_id`` is the ``triage_actions`` row (None for a lease);
    ``related_item_id`` an item the action opened or closed besides this one (the approval a
    write-off over the limit opened, the denial an approval wrote off)."""

    item_id: int
    action: str
    state: str
    version: int
    outbox_id: int | None
    audit_id: int
    message: str
    action_id: int | None = None
    related_item_id: int | None = None


@dataclass(frozen=True, slots=True)
class Preview:
    """A bulk action's dry run: how many items and dollars it would touch. ``ids`` stops at
    the limits' ``preview_ids`` (``truncated`` then says so); ``count`` and ``total`` do not."""

    action: str
    count: int
    total: Decimal
    ids: tuple[int, ...]
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """One item of a bulk run: its result, or the error that stopped it (with its exit code)."""

    item_id: int
    result: ActionResult | None = None
    error: str = ""
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass(frozen=True, slots=True)
class BulkResult:
    """Each item's outcome, in the order applied. ``truncated``: the selection held more
    items than ``max_items``; the rest were left alone."""

    action: str
    outcomes: tuple[ItemOutcome, ...] = field(default_factory=tuple)
    truncated: bool = False

    @property
    def succeeded(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def failed(self) -> int:
        return len(self.outcomes) - self.succeeded

    @property
    def exit_code(self) -> int:
        """0 when every item went through, else 1 (issue #5: some items failed)."""
        return 0 if self.failed == 0 else 1


@dataclass(frozen=True, slots=True)
class RevealedPhi:
    """The unmasked identity behind an item, for the console's audited reveal. Never logged."""

    item_id: int
    audit_id: int
    patient_name: str
    member_id: str
    date_of_birth: str
    subscriber_name: str = ""
    subscriber_member_id: str = ""


@dataclass(frozen=True, slots=True)
class TriageLimits:
    """``lease``: how long claim_item holds an item; ``preview_ids``: ids a dry run lists;
    ``max_bulk``: the most items one bulk call applies to (the CLI's ``--max`` may lower it)."""

    lease: timedelta = timedelta(minutes=30)
    preview_ids: int = 1000
    max_bulk: int = 10_000


# -- the state machine and leases --------------------------------------------------------------


def require_active(item: WorkItem, action: str) -> None:
    """Only open and in-progress items can be acted on; closed ones need ``reverse``."""
    if item.state not in ACTIVE_STATES:
        raise InvalidTransitionError(
            f"work item {item.id} is {item.state}: {action} needs an open or in_progress item"
            f" ({item.state} is final)",
            item_id=item.id,
        )


def require_kind(item: WorkItem, action: str, *kinds: str) -> None:
    if item.kind not in kinds:
        raise InvalidTransitionError(
            f"work item {item.id} is a {item.kind} item: {action} applies to"
            f" {' or '.join(kinds)} items",
            item_id=item.id,
        )


def require_version(item: WorkItem, expected: int | None) -> None:
    if expected is not None and item.version != expected:
        raise ConflictError(
            f"work item {item.id} changed since you loaded it (version {expected}, now"
            f" {item.version}, {item.state}): reload it and decide again",
            item_id=item.id,
        )


def lease_holder(item: WorkItem, now: datetime) -> str | None:
    """Who holds a live lease on the item, if anyone."""
    if item.state != IN_PROGRESS or not item.assigned_to:
        return None
    if item.lease_expires_at is not None and item.lease_expires_at <= now:
        return None
    return item.assigned_to


def require_not_leased_by_other(item: WorkItem, operator: str, now: datetime) -> None:
    holder = lease_holder(item, now)
    if holder is not None and holder != operator:
        until = item.lease_expires_at.isoformat() if item.lease_expires_at else "released"
        raise ConflictError(
            f"work item {item.id} is being worked by {holder} (lease until {until})",
            item_id=item.id,
        )


def require_note(note: str, action: str, what: str = "a note") -> str:
    text = (note or "").strip()
    if not text:
        raise UsageError(f"{action} needs {what} saying why")
    return text


# -- amounts ---------------------------------------------------------------------------------

#: Dollars and cents as an analyst types them: an optional ``$``, digits with commas only as
#: thousands separators (``1,234.50``), then at most two decimals. No sign, exponent, space,
#: underscore or NaN/Infinity: ``Decimal`` itself accepts ``1e2``, which once went through as
#: "1E+2", and stripping every comma once read ``1,00`` (one dollar, European style) as 100.
_AMOUNT = re.compile(r"\$?(?P<whole>[0-9]+|[1-9][0-9]{0,2}(?:,[0-9]{3})+)(?P<cents>\.[0-9]{1,2})?")
_THOUSANDS = re.compile(r"[1-9][0-9]{0,2}(?:,[0-9]{3})+")


def parse_write_off_amount(text: str | Decimal, open_amount: Decimal | None = None) -> Decimal:
    """A write-off amount as the operator typed it, normalised to cents (``Decimal("100.00")``).

    The one check for the CLI, the console and the service, so that ``$1,234.50`` means the
    same everywhere: plain dollars and cents (``100``, ``100.5``, ``$100.50``, ``1,234.50``),
    commas only between groups of three digits, positive and, when ``open_amount`` is given,
    at most the item's open amount. Callers pass the raw text: a comma that is not a thousands
    separator (``1,00``) is refused, never dropped. A ``Decimal`` is held to the same rules
    through its plain notation (``Decimal("1E+2")`` is 100 and passes; ``Decimal("100.001")``
    does not). Raises UsageError with one line saying what is wrong."""
    if isinstance(text, Decimal):
        raw = format(text, "f") if text.is_finite() else str(text)
    elif isinstance(text, str):
        raw = text.strip()
    else:  # a float would already be inexact
        raise UsageError(f"a write-off amount must be text or a Decimal, not {type(text).__name__}")
    value = parse_dollars(raw)
    if value <= ZERO:
        raise UsageError(f"a write-off amount must be more than $0.00, not {dollars(value)}")
    if open_amount is not None and value > open_amount:
        raise UsageError(
            f"cannot write off {dollars(value)}: only {dollars(open_amount)} is open on the item"
        )
    return value


def parse_dollars(raw: str) -> Decimal:
    """Dollars and cents as typed (``_AMOUNT``), to cents; UsageError naming what is wrong. Every
    amount an operator types goes through here: a write-off, a queue's amount filter."""
    raw = raw.strip()
    found = _AMOUNT.fullmatch(raw)
    if found is None and _comma_misused(raw):
        raise UsageError(
            f"{raw!r} is not an amount: a comma may only separate thousands (1,234.50);"
            " cents go after a point (1.00)"
        )
    if found is None:
        raise UsageError(
            f"{raw!r} is not an amount: write dollars and cents, such as 100, 100.50 or"
            " $1,234.50 (no sign, exponent or more than 2 decimals)"
        )
    return Decimal(found["whole"].replace(",", "") + (found["cents"] or "")).quantize(CENT)


def _comma_misused(raw: str) -> bool:
    """A comma that is not a thousands separator (``1,00``, ``12,50``, ``1,2345``, ``1.000,50``):
    said as such, since the analyst likely meant cents, not thousands."""
    whole, _, cents = raw.removeprefix("$").partition(".")
    if "," not in whole + cents or not re.fullmatch(r"[0-9,]+", whole):
        return False
    return "," in cents or not _THOUSANDS.fullmatch(whole)


# -- roles and approval tiers ------------------------------------------------------------------


def may_approve(rules: RulesBook, kind: str, code: str, amount: Decimal, role: str) -> str | None:
    """None when ``role`` may approve ``amount`` of ``kind``/``code``, else why not.

    A role may approve up to its own tier's ``max_amount``. When the amount is beyond every
    tier, the last (most senior) role decides, as the rules file says."""
    tiers = rules.tiers(kind, code)
    if not tiers:
        return None
    own = next((t for t in tiers if t.role == role), None)
    if own is None:
        roles = ", ".join(t.role for t in tiers if t.role != "auto")
        return f"role {role} is not in the approval tiers for {kind} {code} ({roles})"
    if own.max_amount is None or abs(amount) <= own.max_amount:
        return None
    top = tiers[-1]
    beyond = top.max_amount is not None and abs(amount) > top.max_amount
    if beyond and top.role == role:
        return None
    return (
        f"role {role} may approve {kind} {code} up to {dollars(own.max_amount)},"
        f" not {dollars(abs(amount))}"
    )


def _dollars_text(text: str) -> str:
    return dollars(Decimal(text))


def beyond_limits(details: dict[str, Any], money: Callable[[str], str] = _dollars_text) -> str:
    """The words that flag an approval beyond every tier (``details.beyond_all_tiers``: the
    rules' top role still decides, but no tier was written for that much), else "". The top
    tier is named when the request recorded it (``top_limit``, ``top_role``), its amount
    written by ``money`` (a table's ``10,000.00``; the service's messages say ``$10,000.00``)."""
    if not details.get("beyond_all_tiers"):
        return ""
    top, role = details.get("top_limit"), details.get("top_role")
    named = f" (top: {money(top)} for {role})" if top and role else ""
    return f"beyond every approval limit{named}: flagged"


def approve_refusal(
    rules: RulesBook,
    item_id: int,
    details: dict[str, Any],
    amount: Decimal,
    requested_by: str | None,
    *,
    operator: str,
    role: str,
) -> str | None:
    """Why ``operator`` acting as ``role`` may not approve this approval item, else None.

    The one place the rule lives: the service refuses with it, and the console asks it before
    it asks for a note, so an analyst is not made to write one only to be told no."""
    if requested_by and requested_by == operator:
        return f"you requested work item {item_id}: someone else must approve it"
    kind, code = details.get("approval_kind", "adjustment"), details.get("reason_code", "")
    why = may_approve(rules, kind, code, amount, role)
    return None if why is None else f"cannot approve work item {item_id}: {why}"


def snapshot(item: WorkItem) -> dict[str, Any]:
    """The audit's before/after of an item: state and money, never PHI (the patient control
    number is the provider's own claim id, not a person)."""
    return {
        "kind": item.kind,
        "state": item.state,
        "version": item.version,
        "amount": str(item.amount),
        "assigned_to": item.assigned_to,
        "claim_id": item.claim_id,
        "outbox_id": item.outbox_id,
    }
