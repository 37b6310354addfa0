"""The triage service end to end on the committed sample data, on SQLite and PostgreSQL.

The sample set is ingested, processed and drained into a real embedded ledger once per backend
(while account 4120 is inactive, so the OA-23 postings die and become dead letters; the account
is then reactivated, the "fix" a retry needs). Each test gets its own copy: on SQLite a copy of
the database file (so every action really commits), on PostgreSQL one outer transaction that is
rolled back afterwards (each action's transaction is a savepoint inside it). Each test gets a
copy of the ledger file too, and drains the postings its actions queued into it with the real
outbox worker.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from claimsync_console.engine.ingest import ingest_paths
from claimsync_console.engine.outbox import entry_from_json
from claimsync_console.engine.pipeline import process_all
from claimsync_console.engine.rules import RulesBook, load_rules, sample_rules_path
from claimsync_console.engine.samples import sample_files
from claimsync_console.engine.triage import (
    ActionResult,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    TriageService,
    UnresolvedError,
    UsageError,
)
from claimsync_console.engine.worker import DrainReport, drain
from claimsync_console.erp.ledger import LedgerAdapter
from claimsync_console.store.db import make_engine, session_factory
from claimsync_console.store.models import Base, ClaimRow
from claimsync_console.store.models_engine import AuditEntry, OutboxEntry, PaymentMatch, WorkItem
from claimsync_console.store.models_triage import TriageAction
from claimsync_console.store.queries_engine import verify_audit_chain
from tests.store.test_engine_tables import BACKENDS, migrated_once

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DEAD_ACCOUNT = "4120"  # OA-23 (coordination of benefits): inactive while the template drains
D = Decimal


# --------------------------------------------------------------------------- the templates


@dataclass
class Template:
    url: str
    ledger: Path
    dead_letters: int


_TEMPLATES: dict[str, Template] = {}


def _scratch() -> Path:
    """tmpfs when the machine has one: these tests check amounts, not durability."""
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="triage-", dir=shm if shm.is_dir() else None))


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's backup API (WAL content included)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _build(engine: Engine, folder: Path) -> Template:
    sessions = session_factory(engine)
    results = ingest_paths(sessions, sample_files(SAMPLE_DATA), now=NOW)
    assert {r.status for r in results} == {"loaded"}
    process_all(sessions, load_rules(sample_rules_path()), now=NOW)
    ledger = LedgerAdapter({"path": str(folder / "ledger.sqlite3"), "bootstrap_year": 2026})
    ledger.set_account_active(DEAD_ACCOUNT, False)
    report = drain(sessions, ledger, worker_id="template", batch_size=200, now_fn=lambda: NOW)
    ledger.set_account_active(DEAD_ACCOUNT, True)
    assert report.dead > 0 and report.posted > 200
    return Template(engine.url.render_as_string(hide_password=False), ledger.path, report.dead)


def _copy_rows(source: Engine, target: Engine) -> None:
    """Every row of every table, parents first, then each id sequence moved past its rows."""
    with source.connect() as reader, target.begin() as writer:
        for table in Base.metadata.sorted_tables:
            rows = [dict(row) for row in reader.execute(select(table)).mappings()]
            for start in range(0, len(rows), 1000):
                writer.execute(insert(table), rows[start : start + 1000])
            if "id" in table.c and rows:
                writer.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), :top)"),
                    {"top": max(row["id"] for row in rows)},
                )


@pytest.fixture(scope="session", name="sqlite_template")
def sqlite_template_fixture() -> Iterator[Template]:
    """Ingest, process and drain once, on SQLite (shared with test_triage_bulk)."""
    if "sqlite" in _TEMPLATES:
        yield _TEMPLATES["sqlite"]
        return
    folder = _scratch()
    try:
        for engine in migrated_once("sqlite", folder):
            _TEMPLATES["sqlite"] = _build(engine, folder)
        yield _TEMPLATES["sqlite"]
    finally:
        _TEMPLATES.pop("sqlite", None)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", params=BACKENDS, name="template")
def template_fixture(
    request: pytest.FixtureRequest, sqlite_template: Template
) -> Iterator[tuple[str, Template]]:
    """The populated database per backend. PostgreSQL gets the SQLite template's rows copied
    into a migrated schema of its own: the same engine state, without paying for ingest and
    the drain (which the pipeline and worker tests cover on PostgreSQL) a second time."""
    backend: str = request.param
    if backend == "sqlite":
        yield backend, sqlite_template
        return
    if backend in _TEMPLATES:
        yield backend, _TEMPLATES[backend]
        return
    for engine in migrated_once(backend, Path(tempfile.gettempdir())):  # no file on PostgreSQL
        source = make_engine(sqlite_template.url)
        _copy_rows(source, engine)
        source.dispose()
        url = engine.url.render_as_string(hide_password=False)
        _TEMPLATES[backend] = replace(sqlite_template, url=url)
        try:
            yield backend, _TEMPLATES[backend]
        finally:
            _TEMPLATES.pop(backend, None)


# --------------------------------------------------------------------------- one test's world


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    backend: str
    sessions: sessionmaker[Session]
    ledger: LedgerAdapter
    rules: RulesBook
    dead_letters: int
    clock: Clock = field(default_factory=lambda: Clock(NOW))

    def service(
        self, operator: str = "alice", role: str = "analyst", rules: RulesBook | None = None
    ) -> TriageService:
        return TriageService(
            self.sessions, rules or self.rules, operator=operator, role=role, now_fn=self.clock
        )

    def drain(self) -> DrainReport:
        return drain(self.sessions, self.ledger, worker_id="test", batch_size=50,
                     now_fn=self.clock)  # fmt: skip

    def item(self, item_id: int) -> WorkItem:
        with self.sessions() as session:
            found = session.get(WorkItem, item_id)
            assert found is not None
            return found

    def items(self, kind: str, state: str = "open") -> list[WorkItem]:
        with self.sessions() as session:
            query = select(WorkItem).where(WorkItem.kind == kind, WorkItem.state == state)
            return list(session.scalars(query.order_by(WorkItem.id)))

    def outbox(self, outbox_id: int | None) -> OutboxEntry:
        with self.sessions() as session:
            row = session.get(OutboxEntry, outbox_id)
            assert row is not None
            return row

    def audit(self) -> list[AuditEntry]:
        with self.sessions() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))

    def count(self, model: Any) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture(name="env")
def env_fixture(template: tuple[str, Template], tmp_path: Path) -> Iterator[Env]:
    backend, built = template
    folder = _scratch()
    try:
        ledger_path = folder / "ledger.sqlite3"
        copy_sqlite(built.ledger, ledger_path)
        ledger = LedgerAdapter({"path": str(ledger_path)})
        rules = load_rules(sample_rules_path())
        if backend == "sqlite":
            source = Path(built.url.split("///", 1)[1])
            copy_sqlite(source, folder / "claimsync.sqlite3")
            engine = make_engine(f"sqlite+pysqlite:///{folder / 'claimsync.sqlite3'}")
            yield Env(backend, session_factory(engine), ledger, rules, built.dead_letters)
            engine.dispose()
            return
        engine = make_engine(built.url)
        with engine.connect() as connection:
            outer = connection.begin()
            sessions = sessionmaker(
                bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
            )
            try:
                yield Env(backend, sessions, ledger, rules, built.dead_letters)
            finally:
                outer.rollback()
        engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fixed_rules(tmp_path: Path) -> RulesBook:
    """The sample rules with the deliberately unmapped CARCs mapped."""
    text = sample_rules_path().read_text()
    text = text.replace("[adjustments]\n", '[adjustments]\n"CO-B7" = "4100"\n"OA-121" = "4120"\n')
    path = tmp_path / "fixed-rules.toml"
    path.write_text(text)
    return load_rules(path)


def audited(env: Env, result: ActionResult) -> AuditEntry:
    """The result's audit row, checked against the result and the chain."""
    rows = {row.id: row for row in env.audit()}
    row = rows[result.audit_id]
    assert row.work_item_id == result.item_id and row.action == result.action
    assert row.after is not None and row.after["state"] == result.state
    assert row.after["version"] == result.version
    with env.sessions() as session:
        assert verify_audit_chain(session) is None
    return row


def posted_entry(env: Env, outbox_id: int | None) -> Any:
    """The ledger's entry for an outbox row, after the row was drained."""
    row = env.outbox(outbox_id)
    assert row.status == "posted", row.last_error
    found = env.ledger.find_entry(row.idempotency_key)
    assert found is not None
    return found


# --------------------------------------------------------------------------- remap


def test_remap_matches_by_hand_and_the_ledger_sees_the_payment(env: Env) -> None:
    item = env.items("unmatched_remittance")[0]
    claim_id = item.details["candidates"][0]["claim_id"]
    cash_before = env.ledger.account_balance("1010")
    done = env.service().remap(item.id, expected_version=item.version, claim_id=claim_id,
                               note="same patient, typo in CLP01")  # fmt: skip
    assert (done.state, done.version, done.action) == ("resolved", item.version + 1, "remap")
    assert done.outbox_id is not None and "matched to claim" in done.message
    row = audited(env, done)
    assert (row.operator, row.role, row.target) == ("alice", "analyst", f"claim:{claim_id}")
    assert row.before is not None and row.before["state"] == "open"
    assert row.note == "same patient, typo in CLP01"
    with env.sessions() as session:
        match = session.scalars(
            select(PaymentMatch).where(PaymentMatch.claim_payment_id == item.claim_payment_id)
        ).one()
        assert (match.status, match.method, match.claim_id) == ("matched", "manual", claim_id)
        action = session.get(TriageAction, done.action_id)
        assert action is not None and action.outbox_id == done.outbox_id
    queued = env.outbox(done.outbox_id)
    assert queued.kind == "payment" and queued.claim_payment_id == item.claim_payment_id
    assert queued.cash_amount == item.amount and queued.status == "pending"
    assert env.drain().posted == 1
    posted_entry(env, done.outbox_id)
    assert env.ledger.account_balance("1010") == cash_before + item.amount
    assert env.item(item.id).claim_id == claim_id


def test_remap_needs_a_claim_that_exists(env: Env) -> None:
    item = env.items("unmatched_remittance")[0]
    service = env.service()
    with pytest.raises(UsageError):
        service.remap(item.id, expected_version=item.version)
    with pytest.raises(NotFoundError, match="no claim 999999") as raised:
        service.remap(item.id, expected_version=item.version, claim_id=999_999)
    assert raised.value.exit_code == 2
    with pytest.raises(NotFoundError, match="no work item 999999"):
        service.remap(999_999, claim_id=1)
    assert env.item(item.id).version == item.version


def test_reprocess_names_what_is_still_missing_then_posts_after_the_fix(
    env: Env, tmp_path: Path
) -> None:
    item = next(i for i in env.items("mapping_error") if "CO-B7" in i.error)
    audits = len(env.audit())
    with pytest.raises(UnresolvedError, match="still missing: carc:CO-B7") as raised:
        env.service().remap(item.id, expected_version=item.version, reprocess=True)
    assert raised.value.exit_code == 1
    unchanged = env.item(item.id)  # the failed attempt rolled back entirely
    assert (unchanged.state, unchanged.version) == ("open", item.version)
    assert len(env.audit()) == audits

    fixed = env.service(rules=fixed_rules(tmp_path))
    done = fixed.remap(item.id, expected_version=item.version, reprocess=True, note="B7 mapped")
    assert done.state == "resolved" and done.outbox_id is not None
    assert audited(env, done).note == "B7 mapped"
    assert env.outbox(done.outbox_id).cash_amount == D(item.details["cash_amount"])
    assert env.drain().posted == 1
    lines = posted_entry(env, done.outbox_id).lines
    assert any(line.account == "4100" and line.memo == "CO-B7" for line in lines)


# --------------------------------------------------------------------------- approve


def test_an_engine_approval_needs_a_supervisor_and_then_posts(env: Env) -> None:
    item = next(i for i in env.items("approval") if i.details["reason_code"] == "CO-45")
    with pytest.raises(PermissionDeniedError, match="role analyst is not in the approval tiers"):
        env.service("carol", "analyst").approve(item.id, expected_version=item.version)
    done = env.service("bob", "supervisor").approve(
        item.id, expected_version=item.version, note="checked the fee schedule"
    )
    assert done.state == "resolved" and done.outbox_id is not None
    row = audited(env, done)
    assert (row.operator, row.role, row.reason) == ("bob", "supervisor", "CO-45")
    queued = env.outbox(done.outbox_id)
    assert queued.idempotency_key == item.source_key
    assert entry_from_json(queued.entry) == entry_from_json(item.details["posting"]["entry"])
    assert env.drain().posted == 1
    posted_entry(env, done.outbox_id)


# --------------------------------------------------------------------------- write off


def _denial(env: Env, *, at_most: Decimal | None = None, over: Decimal | None = None) -> WorkItem:
    for item in env.items("denial"):
        if (at_most is None or item.amount <= at_most) and (over is None or item.amount > over):
            return item
    raise AssertionError("no such denial in the sample")


def test_a_write_off_within_the_analysts_limit_posts(env: Env) -> None:
    item = _denial(env, at_most=D("500.00"))
    reason = item.details["carcs"][0]
    receivable = {"SMPMB": "1210", "SMPMD": "1220"}.get(item.payer_id, "1230")
    before = env.ledger.account_balance("4150"), env.ledger.account_balance(receivable)
    with pytest.raises(UsageError, match="needs a note"):
        env.service().write_off(item.id, reason=reason, note="  ")
    with pytest.raises(UsageError, match="unknown write-off reason 'CO-999'"):
        env.service().write_off(item.id, reason="CO-999", note="x")
    with pytest.raises(UsageError, match="cannot write off"):
        env.service().write_off(item.id, reason=reason, note="x", amount=item.amount + 1)
    done = env.service().write_off(item.id, reason=reason, note="not worth appealing",
                                   expected_version=item.version)  # fmt: skip
    assert (done.state, done.action) == ("written_off", "write_off")
    row = audited(env, done)
    assert (row.reason, row.note) == (reason, "not worth appealing")
    queued = env.outbox(done.outbox_id)
    assert (queued.kind, queued.amount, queued.cash_amount) == ("write_off", item.amount, 0)
    assert env.drain().posted == 1
    posted_entry(env, done.outbox_id)
    assert env.ledger.account_balance("4150") == before[0] + item.amount
    assert env.ledger.account_balance(receivable) == before[1] - item.amount


def test_over_the_limit_a_write_off_waits_for_a_supervisor_who_is_not_the_requester(
    env: Env,
) -> None:
    item = _denial(env, over=D("500.00"), at_most=D("10000.00"))
    reason = item.details["carcs"][0]
    requested = env.service("alice", "analyst").write_off(
        item.id, reason=reason, note="timely filing lost", expected_version=item.version
    )
    assert requested.action == "write_off_requested" and requested.outbox_id is None
    assert requested.state == "open" and requested.related_item_id is not None
    assert "waits for a supervisor" in requested.message
    audited(env, requested)
    approval = env.item(requested.related_item_id)
    assert (approval.kind, approval.requested_by, approval.amount) == (
        "approval", "alice", item.amount
    )  # fmt: skip
    outbox = env.count(OutboxEntry)
    with pytest.raises(InvalidTransitionError, match="waiting for approval"):
        env.service("alice").write_off(item.id, reason=reason, note="again")
    with pytest.raises(PermissionDeniedError, match="you requested") as raised:
        env.service("alice", "supervisor").approve(approval.id)
    assert raised.value.exit_code == 4
    with pytest.raises(PermissionDeniedError, match=r"up to 500\.00"):
        env.service("carol", "analyst").approve(approval.id)
    assert env.count(OutboxEntry) == outbox  # the refusals queued nothing
    done = env.service("bob", "supervisor").approve(approval.id, note="ok")
    assert done.state == "resolved" and done.related_item_id == item.id
    written = env.item(item.id)
    assert written.state == "written_off" and written.outbox_id == done.outbox_id
    assert [r.action for r in env.audit()[-2:]] == ["approve", "write_off"]
    assert env.audit()[-1].note == "timely filing lost"
    balance = env.ledger.account_balance("4150")
    assert env.drain().posted == 1
    assert env.ledger.account_balance("4150") == balance + item.amount


# --------------------------------------------------------------------------- reverse


def test_reverse_posts_the_compensating_entry_and_reopens_the_item(env: Env) -> None:
    item = _denial(env, at_most=D("500.00"))
    reason = item.details["carcs"][0]
    trial = env.ledger.trial_balance()
    done = env.service().write_off(item.id, reason=reason, note="small")
    assert done.action_id is not None
    with pytest.raises(InvalidTransitionError, match="is pending, not in the ledger"):
        env.service("bob", "supervisor").reverse(done.action_id, note="wrong claim")
    env.drain()
    assert env.ledger.trial_balance() != trial
    with pytest.raises(UsageError):
        env.service("bob", "supervisor").reverse(done.action_id, note="")
    undone = env.service("bob", "supervisor").reverse(done.action_id, note="wrong claim")
    assert (undone.item_id, undone.state, undone.action) == (item.id, "open", "reverse")
    row = audited(env, undone)
    assert (row.target, row.reason) == (f"action:{done.action_id}", "write_off")
    compensating = env.outbox(undone.outbox_id)
    assert compensating.kind == "operator" and compensating.cash_amount == 0
    original = entry_from_json(env.outbox(done.outbox_id).entry)
    mirror = entry_from_json(compensating.entry)
    assert [(ln.account, ln.debit, ln.credit) for ln in mirror.lines] == [
        (ln.account, ln.credit, ln.debit) for ln in original.lines
    ]
    assert env.drain().posted == 1
    assert env.ledger.trial_balance() == trial  # the ledger balances back, to the cent
    with pytest.raises(InvalidTransitionError, match="already reversed"):
        env.service("bob", "supervisor").reverse(done.action_id, note="again")
    again = env.service().write_off(item.id, reason=reason, note="right claim this time")
    assert env.outbox(again.outbox_id).idempotency_key != env.outbox(done.outbox_id).idempotency_key
    assert env.drain().posted == 1


def test_a_reversed_engine_approval_can_be_approved_again_under_a_new_key(env: Env) -> None:
    item = env.items("approval")[0]
    first = env.service("bob", "supervisor").approve(item.id)
    env.drain()
    trial = env.ledger.trial_balance()
    assert first.action_id is not None
    back = env.service("dana", "supervisor").reverse(first.action_id, note="wrong tier")
    assert (back.item_id, back.state) == (item.id, "open")
    env.drain()
    second = env.service("dana", "supervisor").approve(item.id)
    assert env.outbox(second.outbox_id).idempotency_key != item.source_key
    assert env.drain().posted == 1
    assert env.ledger.trial_balance() == trial  # posted, reversed, posted again: once


def test_only_operator_postings_are_reversed(env: Env) -> None:
    unmatched = env.items("unmatched_remittance")[0]
    remapped = env.service().remap(unmatched.id, claim_id=1)
    ignored = env.service().ignore(env.items("rejected_claim")[0].id, note="billed again")
    env.drain()
    for action_id in (remapped.action_id, ignored.action_id):
        assert action_id is not None
        with pytest.raises(InvalidTransitionError, match="only write-offs and approvals"):
            env.service().reverse(action_id, note="undo")
    with pytest.raises(NotFoundError):
        env.service().reverse(999_999, note="undo")


# --------------------------------------------------------------------------- ignore, leases


def test_ignore_needs_a_note_and_posts_nothing(env: Env) -> None:
    item = env.items("rejected_claim")[0]
    outbox = env.count(OutboxEntry)
    with pytest.raises(UsageError, match="ignore needs a note") as raised:
        env.service().ignore(item.id, note="")
    assert raised.value.exit_code == 2
    done = env.service().ignore(item.id, note="billed again from the other system")
    assert done.state == "ignored" and done.outbox_id is None
    assert audited(env, done).note == "billed again from the other system"
    assert env.count(OutboxEntry) == outbox


def test_a_lease_keeps_others_out_until_released_or_expired(env: Env) -> None:
    item = env.items("denial")[0]
    alice, bob = env.service("alice"), env.service("bob")
    held = alice.claim_item(item.id, expected_version=item.version)
    assert held.state == "in_progress" and held.action_id is None
    assert env.item(item.id).assigned_to == "alice"
    with pytest.raises(ConflictError, match="being worked by alice") as raised:
        bob.claim_item(item.id)
    assert raised.value.exit_code == 3
    with pytest.raises(ConflictError):
        bob.ignore(item.id, note="mine now")
    with pytest.raises(ConflictError, match="leased to alice"):
        bob.release_item(item.id)
    assert alice.claim_item(item.id).state == "in_progress"  # renewing one's own lease
    released = alice.release_item(item.id)
    assert released.state == "open" and env.item(item.id).assigned_to is None
    with pytest.raises(InvalidTransitionError, match="only an in_progress item"):
        alice.release_item(item.id)
    bob.claim_item(item.id)
    env.clock.now = NOW + timedelta(hours=1)  # bob's lease (30 minutes) ran out
    taken = alice.claim_item(item.id)
    assert taken.state == "in_progress" and env.item(item.id).assigned_to == "alice"
    actions = [r.action for r in env.audit()[-5:]]
    assert actions == ["claim", "claim", "release", "claim", "claim"]  # refusals audit nothing


# --------------------------------------------------------------------------- conflicts


def test_two_operators_on_the_same_item_one_wins(env: Env) -> None:
    item = _denial(env, at_most=D("500.00"))
    alice, bob = env.service("alice"), env.service("bob")
    outbox = env.count(OutboxEntry)
    alice.ignore(item.id, note="duplicate", expected_version=item.version)
    with pytest.raises(ConflictError, match="changed since you loaded it") as raised:
        bob.write_off(item.id, reason=item.details["carcs"][0], note="x",
                      expected_version=item.version)  # fmt: skip
    assert raised.value.exit_code == 3
    assert env.count(OutboxEntry) == outbox and env.item(item.id).state == "ignored"


# --------------------------------------------------------------------------- invalid transitions


@pytest.mark.parametrize(
    ("kind", "act"),
    [
        ("denial", lambda s, i: s.ignore(i, note="x")),
        ("denial", lambda s, i: s.write_off(i, reason="CO-50", note="x")),
        ("denial", lambda s, i: s.claim_item(i)),
        ("approval", lambda s, i: s.approve(i)),
        ("unmatched_remittance", lambda s, i: s.remap(i, claim_id=1)),
        ("mapping_error", lambda s, i: s.remap(i, reprocess=True)),
        ("dead_letter", lambda s, i: s.retry_item(i)),
    ],
    ids=["ignore", "write_off", "claim", "approve", "remap", "reprocess", "retry"],
)
def test_a_closed_item_refuses_every_action(env: Env, kind: str, act: Any) -> None:
    target = env.items(kind)[-1]
    env.service().ignore(target.id, note="closing it")
    item = env.item(target.id)
    with pytest.raises(InvalidTransitionError) as raised:
        act(env.service("bob", "supervisor"), item.id)
    assert raised.value.exit_code == 1
    assert f"work item {item.id} is ignored" in raised.value.message
    assert env.item(item.id).version == item.version


@pytest.mark.parametrize(
    ("kind", "act", "expected"),
    [
        ("denial", lambda s, i: s.approve(i), "applies to approval items"),
        ("denial", lambda s, i: s.retry_item(i), "applies to dead_letter items"),
        ("denial", lambda s, i: s.remap(i, claim_id=1), "applies to unmatched_remittance"),
        ("denial", lambda s, i: s.remap(i, reprocess=True), "applies to mapping_error"),
        ("unmatched_remittance", lambda s, i: s.write_off(i, reason="CO-50", note="x"),
         "applies to denial or rejected_claim"),
        ("dead_letter", lambda s, i: s.write_off(i, reason="CO-50", note="x"),
         "applies to denial or rejected_claim"),
    ],
)  # fmt: skip
def test_an_action_on_the_wrong_kind_is_refused(
    env: Env, kind: str, act: Any, expected: str
) -> None:
    item = env.items(kind)[0]
    with pytest.raises(InvalidTransitionError, match=expected):
        act(env.service("bob", "supervisor"), item.id)
    assert env.item(item.id).version == item.version


# --------------------------------------------------------------------------- audit, PHI


def test_the_audit_chain_holds_and_a_tampered_row_is_found(env: Env) -> None:
    service = env.service("bob", "supervisor")
    results = [
        service.claim_item(env.items("denial")[0].id),
        service.ignore(env.items("rejected_claim")[0].id, note="n/a"),
        service.retry_item(env.items("dead_letter")[0].id),
    ]
    rows = env.audit()
    assert [r.action for r in rows[-3:]] == ["claim", "ignore", "retry"]
    assert {r.audit_id for r in results} == {r.id for r in rows[-3:]}
    for previous, row in itertools.pairwise(rows):
        assert row.prev_hash == previous.hash
    with env.sessions() as session:
        assert verify_audit_chain(session) is None
    with env.sessions.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == rows[-2].id).values(note="x"))
    with env.sessions() as session:
        assert verify_audit_chain(session) == rows[-2].id


def test_reveal_phi_returns_the_identity_and_audits_the_reveal(env: Env) -> None:
    item = env.items("denial")[0]
    with env.sessions() as session:
        claim = session.get(ClaimRow, item.claim_id)
        assert claim is not None
        person = claim.patient or claim.subscriber
    with pytest.raises(UsageError, match="reveal_phi needs a reason"):
        env.service().reveal_phi(item.id, "")
    shown = env.service().reveal_phi(item.id, "patient on the phone")
    assert shown.patient_name.startswith(person["last_name"] + ", " + person["first_name"])
    assert shown.member_id == (person["member_id"] or claim.subscriber["member_id"])
    assert shown.date_of_birth == (person["date_of_birth"] or "")
    row = env.audit()[-1]
    assert (row.id, row.action, row.reason) == (
        shown.audit_id,
        "reveal_phi",
        "patient on the phone",
    )
    assert (row.work_item_id, row.operator) == (item.id, "alice")
    stored = f"{row.before}{row.after}{row.note}{row.target}"
    assert row.before is None and row.after is None
    assert person["last_name"] not in stored and shown.member_id not in stored
    with env.sessions() as session:
        assert verify_audit_chain(session) is None


# --------------------------------------------------------------------------- atomicity


def test_a_change_racing_the_action_rolls_the_whole_action_back(env: Env) -> None:
    """Someone bumps the item just before the write-off's own UPDATE (after its posting was
    queued): the action fails as a conflict and leaves no posting, action or audit row."""
    item = _denial(env, at_most=D("500.00"))
    counts = env.count(OutboxEntry), env.count(TriageAction), env.count(AuditEntry)
    bind = env.sessions.kw["bind"]
    fired: list[str] = []

    def someone_else_first(_c: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not fired and statement.lstrip().upper().startswith("UPDATE WORK_ITEMS"):
            fired.append(statement)
            cursor.execute(f"UPDATE work_items SET version = version + 1 WHERE id = {item.id}")

    event.listen(bind, "before_cursor_execute", someone_else_first)
    try:
        with pytest.raises(ConflictError, match="changed by someone else meanwhile"):
            env.service().write_off(item.id, reason=item.details["carcs"][0], note="x",
                                    expected_version=item.version)  # fmt: skip
    finally:
        event.remove(bind, "before_cursor_execute", someone_else_first)
    assert fired
    assert (env.count(OutboxEntry), env.count(TriageAction), env.count(AuditEntry)) == counts
    assert env.item(item.id).state == "open"


def test_reversing_an_approved_write_off_reopens_the_denial(env: Env) -> None:
    item = _denial(env, over=D("500.00"), at_most=D("10000.00"))
    trial = env.ledger.trial_balance()
    asked = env.service("alice").write_off(item.id, reason="CO-50", note="lost the appeal")
    approved = env.service("bob", "supervisor").approve(asked.related_item_id or 0)
    env.drain()
    assert approved.action_id is not None and env.item(item.id).state == "written_off"
    back = env.service("bob", "supervisor").reverse(approved.action_id, note="appeal reopened")
    assert (back.item_id, back.state) == (item.id, "open")
    approval = env.item(asked.related_item_id or 0)
    assert approval.state == "resolved" and approval.details["reversed_by"] == back.action_id
    assert "pending_approval" not in env.item(item.id).details
    assert env.drain().posted == 1
    assert env.ledger.trial_balance() == trial
    again = env.service("alice").write_off(item.id, reason="CO-50", note="lost it twice")
    assert again.action == "write_off_requested" and again.related_item_id != approval.id
