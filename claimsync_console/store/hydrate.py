"""Rows -> domain objects for the posting pipeline, and the queries that pick what it still owes.

The engine posts long after ingest, from rows, never from the file again; so a hydrated
``ClaimPayment`` must be the one the reader produced, field for field where it matters: the
idempotency key (``engine.keys``) hashes the CLP's sequence, position and money, and a key that
came out different after a round trip would post the same payment twice. ``tests/store/
test_hydrate.py`` pins that for every sample payment.

Every loader is batched: one query per table for a whole chunk of ids (``IN`` lists of at most
``KEYS_PER_QUERY``), never one per payment, so a 100k-claim run costs a few hundred statements.
Order is the file's: claim-level CAS by ``position``, services by ``line_number`` and each
service's CAS by ``position``; PLB pairs by ``position``.

The pending queries are anti-joins on indexed foreign keys (``outbox.claim_payment_id``,
``work_items.claim_payment_id`` / ``remittance_id``), keyset-paged by id, so each chunk costs
the same at a million rows as at a hundred.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import Table, and_, exists, not_, or_, select
from sqlalchemy.orm import Session, aliased

from claimsync_console.domain import (
    ZERO,
    Adjustment,
    Amount,
    ClaimPayment,
    DatedValue,
    Party,
    PersonName,
    ProviderAdjustment,
    Quantity,
    Reference,
    RemittanceHeader,
    ServicePayment,
)
from claimsync_console.store.models import (
    AdjustmentRow,
    ClaimPaymentRow,
    ProviderAdjustmentRow,
    Remittance,
    ServicePaymentRow,
    SourceFile,
)
from claimsync_console.store.models_engine import OutboxEntry, PaymentMatch, WorkItem

KEYS_PER_QUERY = 500
T = TypeVar("T")

# Core tables: hydration reads whole chunks and needs none of the ORM's identity bookkeeping.
RM = cast(Table, Remittance.__table__)
SF = cast(Table, SourceFile.__table__)
CP = cast(Table, ClaimPaymentRow.__table__)
SV = cast(Table, ServicePaymentRow.__table__)
AJ = cast(Table, AdjustmentRow.__table__)
PL = cast(Table, ProviderAdjustmentRow.__table__)
PM = cast(Table, PaymentMatch.__table__)
OB = cast(Table, OutboxEntry.__table__)
WI = cast(Table, WorkItem.__table__)
POSTABLE_MATCHES = ("matched", "reversal_linked")
HOLDING_KINDS = ("mapping_error", "approval")  # items that hold a posting back


class RowNotFoundError(LookupError):
    """An id that names no row (deleted, or never loaded)."""


def _chunks(ids: Iterable[T], size: int = KEYS_PER_QUERY) -> Iterator[list[T]]:
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


# -- JSON columns back to value objects --------------------------------------------------------


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def person(data: dict[str, Any] | None) -> PersonName | None:
    if not data:
        return None
    return PersonName(
        entity_code=data.get("entity_code", ""),
        last_name=data.get("last_name", ""),
        first_name=data.get("first_name", ""),
        middle_name=data.get("middle_name", ""),
        id_qualifier=data.get("id_qualifier", ""),
        member_id=data.get("member_id", ""),
        date_of_birth=_date(data.get("date_of_birth")),
    )


def references(data: Sequence[dict[str, str]] | None) -> tuple[Reference, ...]:
    return tuple(Reference(r["qualifier"], r["value"]) for r in data or ())


def dates(data: Sequence[dict[str, str | None]] | None) -> tuple[DatedValue, ...]:
    return tuple(
        DatedValue(str(d["qualifier"]), _date(d.get("value")), _date(d.get("end")))
        for d in data or ()
    )


def amounts(data: Sequence[dict[str, str]] | None) -> tuple[Amount, ...]:
    return tuple(Amount(a["qualifier"], Decimal(a["amount"])) for a in data or ())


def quantities(data: Sequence[dict[str, str]] | None) -> tuple[Quantity, ...]:
    return tuple(Quantity(q["qualifier"], Decimal(q["quantity"])) for q in data or ())


# -- remittance headers ------------------------------------------------------------------------


def _header(row: Any) -> RemittanceHeader:
    return RemittanceHeader(
        interchange_control_number=row.interchange_control_number,
        group_control_number=row.group_control_number,
        transaction_control_number=row.transaction_control_number,
        version=row.version,
        sender_id=row.sender_id,
        receiver_id=row.receiver_id,
        handling_code=row.handling_code,
        payment_amount=row.payment_amount,
        credit_debit=row.credit_debit,
        payment_method=row.payment_method,
        payment_format=row.payment_format,
        payment_date=row.payment_date,
        trace_type=row.trace_type,
        trace_number=row.trace_number,
        originator_id=row.originator_id,
        payer=Party(row.payer_name, row.payer_id_qualifier, row.payer_identifier),
        payee=Party(row.payee_name, row.payee_id_qualifier, row.payee_identifier),
        payer_contact=row.payer_contact,
        production_date=row.production_date,
        segment_start=row.segment_start,
    )


def load_remittance_headers(
    session: Session, remittance_ids: Iterable[int]
) -> dict[int, tuple[RemittanceHeader, str]]:
    """Each remittance's header and the sha256 of the file it came from (the key's root)."""
    found: dict[int, tuple[RemittanceHeader, str]] = {}
    for chunk in _chunks(remittance_ids):
        rows = session.execute(
            select(RM, SF.c.sha256.label("file_sha256"))
            .join(SF, SF.c.id == RM.c.source_file_id)
            .where(RM.c.id.in_(chunk))
        )
        found.update((row.id, (_header(row), row.file_sha256)) for row in rows)
    return found


def load_remittance_header(session: Session, remittance_id: int) -> tuple[RemittanceHeader, str]:
    found = load_remittance_headers(session, [remittance_id]).get(remittance_id)
    if found is None:
        raise RowNotFoundError(f"no remittance {remittance_id}")
    return found


# -- claim payments ----------------------------------------------------------------------------


def _adjustment(row: Any) -> Adjustment:
    return Adjustment(row.group_code, row.reason_code, row.amount, row.quantity)


def _service(row: Any, adjustments: tuple[Adjustment, ...]) -> ServicePayment:
    return ServicePayment(
        procedure_qualifier=row.procedure_qualifier,
        procedure_code=row.procedure_code,
        modifiers=tuple(row.modifiers or ()),
        charge=row.charge,
        paid=row.paid,
        revenue_code=row.revenue_code,
        units_paid=row.units_paid,
        original_procedure_code=row.original_procedure_code,
        original_units=row.original_units,
        adjustments=adjustments,
        references=references(row.references),
        dates=dates(row.dates),
        amounts=amounts(row.amounts),
        quantities=quantities(row.quantities),
        remark_codes=tuple(row.remark_codes or ()),
        segment_index=row.segment_index,
    )


def _claim_payment(
    row: Any, adjustments: tuple[Adjustment, ...], services: tuple[ServicePayment, ...]
) -> ClaimPayment:
    return ClaimPayment(
        patient_control_number=row.patient_control_number,
        status_code=row.status_code,
        charge=row.charge,
        paid=row.paid,
        patient_responsibility=row.patient_responsibility,
        filing_indicator=row.filing_indicator,
        payer_claim_control_number=row.payer_claim_control_number,
        facility_code=row.facility_code,
        frequency_code=row.frequency_code,
        drg_code=row.drg_code,
        adjustments=adjustments,
        services=services,
        patient=person(row.patient),
        insured=person(row.insured),
        corrected_patient=person(row.corrected_patient),
        corrected_insured=person(row.corrected_insured),
        rendering_provider=person(row.rendering_provider),
        references=references(row.references),
        dates=dates(row.dates),
        amounts=amounts(row.amounts),
        quantities=quantities(row.quantities),
        inpatient_remarks=tuple(row.inpatient_remarks or ()),
        outpatient_remarks=tuple(row.outpatient_remarks or ()),
        segment_start=row.segment_start,
        segment_end=row.segment_end,
        sequence=row.sequence,
    )


def load_claim_payments(session: Session, ids: Iterable[int]) -> dict[int, ClaimPayment]:
    """The claim payments with these ids (missing ids are simply absent), with claim- and
    line-level CAS and their services, in file order. Three queries per chunk of ids."""
    found: dict[int, ClaimPayment] = {}
    for chunk in _chunks(ids):
        payments = session.execute(select(CP).where(CP.c.id.in_(chunk))).all()
        if not payments:
            continue
        services = session.execute(
            select(SV).where(SV.c.claim_payment_id.in_(chunk)).order_by(SV.c.line_number, SV.c.id)
        ).all()
        claim_cas: defaultdict[int, list[Adjustment]] = defaultdict(list)
        line_cas: defaultdict[int, list[Adjustment]] = defaultdict(list)
        for row in session.execute(
            select(AJ).where(AJ.c.claim_payment_id.in_(chunk)).order_by(AJ.c.position, AJ.c.id)
        ):
            target = claim_cas[row.claim_payment_id]
            if row.service_payment_id is not None:
                target = line_cas[row.service_payment_id]
            target.append(_adjustment(row))
        by_payment: defaultdict[int, list[ServicePayment]] = defaultdict(list)
        for row in services:
            by_payment[row.claim_payment_id].append(_service(row, tuple(line_cas[row.id])))
        for row in payments:
            found[row.id] = _claim_payment(row, tuple(claim_cas[row.id]), tuple(by_payment[row.id]))
    return found


# -- provider-level adjustments ----------------------------------------------------------------


def _plb(row: Any) -> ProviderAdjustment:
    return ProviderAdjustment(
        provider_id=row.provider_id,
        fiscal_period_date=row.fiscal_period_date,
        reason_code=row.reason_code,
        reference=row.reference,
        amount=row.amount,
        segment_index=row.segment_index,
    )


def load_provider_adjustments_for(
    session: Session, remittance_ids: Iterable[int]
) -> dict[int, tuple[ProviderAdjustment, ...]]:
    """Each remittance's PLB pairs in file order; a remittance without any is absent."""
    found: defaultdict[int, list[ProviderAdjustment]] = defaultdict(list)
    for chunk in _chunks(remittance_ids):
        rows = session.execute(
            select(PL).where(PL.c.remittance_id.in_(chunk)).order_by(PL.c.position, PL.c.id)
        )
        for row in rows:
            found[row.remittance_id].append(_plb(row))
    return {remittance_id: tuple(plbs) for remittance_id, plbs in found.items()}


def load_provider_adjustments(
    session: Session, remittance_id: int
) -> tuple[ProviderAdjustment, ...]:
    return load_provider_adjustments_for(session, [remittance_id]).get(remittance_id, ())


# -- what the pipeline still has to post -------------------------------------------------------


def pending_claim_payments(session: Session, after: int, limit: int) -> list[tuple[int, int]]:
    """(claim payment id, remittance id), by id after ``after``: payments matched (or linked
    reversals) with no payment/reversal outbox row and no mapping_error or approval item in any
    state. Whole-claim denials (CLP02 4, CLP04 0) and reversals of one never post: left out."""
    original = aliased(CP)
    whole_denial = and_(CP.c.status_code == "4", CP.c.paid == ZERO)
    denial_reversed = and_(original.c.status_code == "4", original.c.paid == ZERO)
    posted = exists().where(
        OB.c.claim_payment_id == CP.c.id, OB.c.kind.in_(("payment", "reversal"))
    )
    held = exists().where(WI.c.claim_payment_id == CP.c.id, WI.c.kind.in_(HOLDING_KINDS))
    query = (
        select(CP.c.id, CP.c.remittance_id)
        .join(PM, PM.c.claim_payment_id == CP.c.id)
        .outerjoin(original, original.c.id == PM.c.reversed_payment_id)
        .where(PM.c.status.in_(POSTABLE_MATCHES), CP.c.id > after, not_(whole_denial))
        .where(or_(original.c.id.is_(None), not_(denial_reversed)), ~posted, ~held)
        .order_by(CP.c.id)
        .limit(limit)
    )
    return [(int(a), int(b)) for a, b in session.execute(query)]


def pending_plb_remittances(session: Session, after: int, limit: int) -> list[int]:
    """Remittances with PLB pairs and neither a PLB posting nor an item holding it."""
    has_plb = exists().where(PL.c.remittance_id == RM.c.id)
    posted = exists().where(OB.c.remittance_id == RM.c.id, OB.c.kind == "plb")
    held = exists().where(
        WI.c.remittance_id == RM.c.id,
        WI.c.kind.in_(HOLDING_KINDS),
        WI.c.claim_payment_id.is_(None),
    )
    query = select(RM.c.id).where(RM.c.id > after, has_plb, ~posted, ~held)
    return [int(r) for r in session.scalars(query.order_by(RM.c.id).limit(limit))]


def mapping_error_chunks(
    session: Session, states: Sequence[str], ids: Sequence[int] | None, limit: int
) -> Iterator[list[Any]]:
    """Chunks of mapping_error items (id, version, claim_payment_id, remittance_id,
    source_key, details): the given ids, or every one in ``states``, by id."""
    query = (
        select(WI.c.id, WI.c.version, WI.c.claim_payment_id, WI.c.remittance_id,
               WI.c.source_key, WI.c.details)
        .where(WI.c.kind == "mapping_error", WI.c.state.in_(states))
        .order_by(WI.c.id)
    )  # fmt: skip
    if ids is not None:
        for chunk in _chunks(sorted(set(ids)), limit):
            yield list(session.execute(query.where(WI.c.id.in_(chunk))).all())
        return
    after = 0
    while rows := list(session.execute(query.where(WI.c.id > after).limit(limit)).all()):
        after = rows[-1].id
        yield rows
