"""The matcher's reads: indexed, batched queries that turn rows into ``match_scoring`` facts.

Every query is an ``IN`` over one chunk of keys or a LIMITed lookup on an index, so the cost
grows with the payments being matched, not with the claims on file. Names and member ids are
read from their JSON columns into memory only, for scoring; they are never logged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Table, select, union_all
from sqlalchemy.orm import Session

from claimsync_console.engine.match_scoring import (
    REVERSAL,
    ClaimFacts,
    FamilyKey,
    OriginalFacts,
    PaymentFacts,
    people,
    statement_dates,
)
from claimsync_console.engine.workitems import normalise_payer_id
from claimsync_console.store.models import (
    AdjustmentRow,
    ClaimPaymentRow,
    ClaimRow,
    ClaimStatusRow,
    Remittance,
)
from claimsync_console.store.models_engine import PaymentMatch

# Core tables, not ORM entities: these reads run thousands of times per run and need none of
# the ORM's per-row bookkeeping.
CL = cast(Table, ClaimRow.__table__)
CP = cast(Table, ClaimPaymentRow.__table__)
CS = cast(Table, ClaimStatusRow.__table__)
RM = cast(Table, Remittance.__table__)
PM = cast(Table, PaymentMatch.__table__)
AJ = cast(Table, AdjustmentRow.__table__)
KEYS_PER_QUERY = 500
POOL_LIMIT = 8
MIN_PREFIX = 4
_TOP = "\U0010ffff"  # after every character: [p, p + _TOP) holds exactly the strings starting p
T = TypeVar("T")

_CLAIM_COLUMNS = (
    CL.c.id,
    CL.c.patient_control_number,
    CL.c.payer_identifier,
    CL.c.frequency_code,
    CL.c.payer_claim_control_number,
    CL.c.billed_amount,
    CL.c.service_date_from,
    CL.c.service_date_to,
    CL.c.subscriber,
    CL.c.patient,
)
_PAYMENT_COLUMNS = (
    CP.c.id,
    CP.c.remittance_id,
    CP.c.patient_control_number,
    CP.c.status_code,
    CP.c.charge,
    CP.c.paid,
    CP.c.payer_claim_control_number,
    RM.c.payer_identifier,
    RM.c.payer_name,
    RM.c.trace_number,
    RM.c.payment_date,
    CP.c.dates,
    CP.c.patient,
    CP.c.insured,
)


def _chunks(keys: Iterable[T], size: int = KEYS_PER_QUERY) -> Iterator[list[T]]:
    items = sorted(set(keys), key=str)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def claim_facts(row: Any) -> ClaimFacts:
    """``row`` holds _CLAIM_COLUMNS (typed Any: Row's generics differ across SQLAlchemy 2.0/2.1)."""
    subscriber, patient = getattr(row, "subscriber", None), getattr(row, "patient", None)
    member_ids, names = people(subscriber)
    if patient:  # a dependent: the patient's name is the one the 835 echoes
        names = people(patient)[1]
    return ClaimFacts(
        claim_id=row.id,
        patient_control_number=row.patient_control_number,
        payer_id=normalise_payer_id(row.payer_identifier),
        frequency_code=row.frequency_code,
        replaces_ccn=row.payer_claim_control_number,
        billed_amount=row.billed_amount,
        date_from=row.service_date_from,
        date_to=row.service_date_to,
        member_ids=member_ids,
        names=names,
    )


def days_around(day: date, days: int) -> tuple[date, date]:
    """``day`` ± ``days``, kept inside what a date can hold: a file may say 9999-12-31, and an
    OverflowError here stopped every payment's matching, run after run."""
    span = timedelta(days=days)
    low = day - span if day - date.min >= span else date.min
    high = day + span if date.max - day >= span else date.max
    return low, high


def payment_facts(row: Any) -> PaymentFacts:
    """``row`` holds _PAYMENT_COLUMNS."""
    date_from, date_to = statement_dates(row.dates or [])
    member_ids, _ = people(row.patient, row.insured)
    return PaymentFacts(
        claim_payment_id=row.id,
        remittance_id=row.remittance_id,
        patient_control_number=row.patient_control_number,
        status_code=row.status_code,
        charge=row.charge,
        paid=row.paid,
        payer_claim_control_number=row.payer_claim_control_number,
        payer_id=normalise_payer_id(row.payer_identifier),
        payer_name=row.payer_name,
        trace_number=row.trace_number,
        payment_date=row.payment_date,
        date_from=date_from,
        date_to=date_to,
        member_ids=member_ids,
        names=people(row.patient)[1],
    )


class Lookup:
    """One matching run's reads; caches only the (few) distinct payer ids."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._payers: dict[str, list[str]] | None = None

    # -- payments ------------------------------------------------------------------------------

    def payments(self, *where: Any, limit: int | None = None) -> list[PaymentFacts]:
        query = (
            select(*_PAYMENT_COLUMNS)
            .join(RM, RM.c.id == CP.c.remittance_id)
            .where(*where)
            .order_by(CP.c.id)
        )
        if limit is not None:
            query = query.limit(limit)
        return [payment_facts(row) for row in self.session.execute(query)]

    def pending(
        self,
        file_ids: Sequence[int] | None,
        remittance_ids: Sequence[int] | None,
        reversals: bool,
        after: int,
        limit: int = KEYS_PER_QUERY,
    ) -> list[PaymentFacts]:
        """The next payments with no verdict: an anti-join on the unique claim_payment_id."""
        unmatched = ~select(PM.c.id).where(PM.c.claim_payment_id == CP.c.id).exists()
        where: list[Any] = [unmatched, CP.c.id > after]
        kind = CP.c.status_code
        where.append(kind == REVERSAL if reversals else kind != REVERSAL)
        if file_ids is not None:
            where.append(CP.c.source_file_id.in_(file_ids))
        if remittance_ids is not None:
            where.append(CP.c.remittance_id.in_(remittance_ids))
        return self.payments(*where, limit=limit)

    def originals(self, ccns: Iterable[str]) -> list[OriginalFacts]:
        """Non-reversal payments under these CLP07s, with the claim their match found."""
        found: list[OriginalFacts] = []
        for chunk in _chunks(c for c in ccns if c):
            rows = self.session.execute(
                select(
                    CP.c.id,
                    CP.c.payer_claim_control_number,
                    RM.c.payer_identifier,
                    RM.c.payment_date,
                    CP.c.charge,
                    CP.c.paid,
                    PM.c.claim_id,
                )
                .join(RM, RM.c.id == CP.c.remittance_id)
                .outerjoin(PM, PM.c.claim_payment_id == CP.c.id)
                .where(
                    CP.c.payer_claim_control_number.in_(chunk),
                    CP.c.status_code != REVERSAL,
                )
            )
            found += [
                OriginalFacts(r[0], r[1], normalise_payer_id(r[2]), r[3], r[4], r[5], r[6])
                for r in rows
            ]
        return found

    def reversed_ids(self, payment_ids: Iterable[int]) -> set[int]:
        """Which of these payments a reversal has already been linked to."""
        done: set[int] = set()
        for chunk in _chunks(payment_ids):
            done.update(
                self.session.scalars(
                    select(PM.c.reversed_payment_id).where(PM.c.reversed_payment_id.in_(chunk))
                )
            )
        return done

    def adjustment_codes(self, payment_ids: Iterable[int]) -> dict[int, list[tuple[str, str]]]:
        """(group, CARC) pairs per payment, claim and line level together."""
        codes: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for chunk in _chunks(payment_ids):
            rows = self.session.execute(
                select(
                    AJ.c.claim_payment_id,
                    AJ.c.group_code,
                    AJ.c.reason_code,
                ).where(AJ.c.claim_payment_id.in_(chunk))
            )
            for payment_id, group, reason in rows:
                codes[payment_id].append((group, reason))
        return codes

    # -- claims --------------------------------------------------------------------------------

    def _claims(
        self, *where: Any, limit: int | None = None, with_people: bool = True
    ) -> list[ClaimFacts]:
        """Claim facts; without people, the PHI JSON is neither read nor decoded."""
        columns = _CLAIM_COLUMNS if with_people else _CLAIM_COLUMNS[:-2]
        query = select(*columns).where(*where).order_by(CL.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [claim_facts(row) for row in self.session.execute(query)]

    def claims_by_pcn(
        self, pcns: Iterable[str], *, with_people: bool = True
    ) -> dict[str, list[ClaimFacts]]:
        """Every version of every claim with these CLP01s (ix_claims_pcn_payer)."""
        found: dict[str, list[ClaimFacts]] = defaultdict(list)
        for chunk in _chunks(p for p in pcns if p):
            where = CL.c.patient_control_number.in_(chunk)
            for claim in self._claims(where, with_people=with_people):
                found[claim.patient_control_number].append(claim)
        return found

    def families_by_ccn(self, ccns: Iterable[str]) -> dict[str, set[FamilyKey]]:
        """The claims a CLP07 points at: the 277CA that issued it (REF*1K), a replacement that
        cites it (REF*F8), or a payment under it that was already matched."""
        found: dict[str, set[FamilyKey]] = defaultdict(set)
        for chunk in _chunks(c for c in ccns if c):
            sources = (
                select(
                    CS.c.payer_claim_control_number,
                    CS.c.patient_control_number,
                    CS.c.payer_identifier,
                ).where(CS.c.payer_claim_control_number.in_(chunk)),
                select(
                    CL.c.payer_claim_control_number,
                    CL.c.patient_control_number,
                    CL.c.payer_identifier,
                ).where(CL.c.payer_claim_control_number.in_(chunk)),
                select(
                    CP.c.payer_claim_control_number,
                    CL.c.patient_control_number,
                    CL.c.payer_identifier,
                )
                .join(PM, PM.c.claim_payment_id == CP.c.id)
                .join(CL, CL.c.id == PM.c.claim_id)
                .where(CP.c.payer_claim_control_number.in_(chunk)),
            )
            for query in sources:
                for ccn, pcn, payer in self.session.execute(query):
                    found[ccn].add((pcn, normalise_payer_id(payer)))
        return found

    def _raw_payers(self, payer_id: str) -> list[str]:
        """The stored spellings of a normalised payer id (all payers when it is unknown)."""
        if self._payers is None:
            self._payers = defaultdict(list)
            stored = self.session.scalars(select(CL.c.payer_identifier).distinct())
            for raw in stored:
                self._payers[normalise_payer_id(raw)].append(raw)
        if not payer_id:
            return [raw for spellings in self._payers.values() for raw in spellings]
        return self._payers.get(payer_id, [])

    def candidate_pool(self, payment: PaymentFacts) -> list[ClaimFacts]:
        """Claims worth scoring for an unmatched payment, in one statement: a UNION ALL of
        LIMITed index lookups by CLP01 prefix (three lengths), by payer and billed amount, and
        by payer and a service date within three days."""
        pcn = payment.patient_control_number
        lengths = sorted({len(pcn) - 1, len(pcn) - 3, max(MIN_PREFIX, len(pcn) // 2)})
        lookups = [
            (CL.c.patient_control_number >= pcn[:n], CL.c.patient_control_number < pcn[:n] + _TOP)
            for n in lengths
            if n >= MIN_PREFIX
        ]
        payers = self._raw_payers(payment.payer_id)
        if payers:
            lookups.append(
                (CL.c.payer_identifier.in_(payers), CL.c.billed_amount == abs(payment.charge))
            )
            if payment.date_from is not None:
                window = days_around(payment.date_from, 3)
                lookups.append(
                    (CL.c.payer_identifier.in_(payers), CL.c.service_date_from.between(*window))
                )
        if not lookups:
            return []
        ids = union_all(
            *(
                select(CL.c.id).where(*where).limit(POOL_LIMIT).subquery().select()
                for where in lookups
            )
        )
        return self._claims(CL.c.id.in_(ids.scalar_subquery()))
