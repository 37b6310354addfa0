"""Streams a reader's domain objects into the tables in batches, inside the caller's transaction.

Objects arrive in file order (an 835 header, its claim payments, its trailer; or 837 claims; or
277CA statuses). Claim payments and claims are buffered up to ``batch_size`` and then written
with one executemany per table: parents with RETURNING ids in order, then their children. So
memory holds one batch, never the file, and a 100k-claim file costs a few hundred statements.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from sqlalchemy.orm import Session

from claimsync_console.domain import (
    Claim,
    ClaimPayment,
    ClaimStatus,
    RemittanceHeader,
    RemittanceTrailer,
    ServicePayment,
)
from claimsync_console.store import queries, rows
from claimsync_console.store.rows import Row, UnstorableValueError

DEFAULT_BATCH_SIZE = 1000
T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class BatchLoader:
    """Feed it objects with ``add``; call ``finish`` once the reader is exhausted."""

    def __init__(
        self, session: Session, source_file_id: int, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.session = session
        self.source_file_id = source_file_id
        self.batch_size = batch_size
        self._remittance_id: int | None = None
        self._sequence = 0
        self._payments: list[tuple[ClaimPayment, int, int]] = []
        self._claims: list[Claim] = []
        self._statuses: list[Row] = []

    def add(self, item: object) -> None:
        if isinstance(item, ClaimPayment):
            self._add_payment(item)
        elif isinstance(item, Claim):
            self._claims.append(item)
            if len(self._claims) >= self.batch_size:
                self._flush_claims()
        elif isinstance(item, ClaimStatus):
            self._statuses.append(rows.claim_status_row(item, self.source_file_id))
            if len(self._statuses) >= self.batch_size:
                self._flush_statuses()
        elif isinstance(item, RemittanceHeader):
            self._start_remittance(item)
        elif isinstance(item, RemittanceTrailer):
            self._finish_remittance(item)

    def finish(self) -> None:
        self._flush_payments()
        self._flush_claims()
        self._flush_statuses()

    # -- 835 ---------------------------------------------------------------------------------

    def _start_remittance(self, header: RemittanceHeader) -> None:
        self._flush_payments()
        row = rows.remittance_row(header, self.source_file_id)
        self._remittance_id = queries.insert_remittance(self.session, row)
        self._sequence = 0

    def _add_payment(self, payment: ClaimPayment) -> None:
        if self._remittance_id is None:
            raise UnstorableValueError(
                payment.segment_start, "CLP", "a claim payment arrived outside any 835 header"
            )
        self._sequence += 1
        sequence = payment.sequence or self._sequence
        self._payments.append((payment, self._remittance_id, sequence))
        if len(self._payments) >= self.batch_size:
            self._flush_payments()

    def _finish_remittance(self, trailer: RemittanceTrailer) -> None:
        self._flush_payments()
        remittance_id = self._remittance_id
        if remittance_id is None:
            raise UnstorableValueError(
                trailer.segment_end, "SE", "an 835 trailer arrived outside any 835 header"
            )
        queries.finish_remittance(self.session, remittance_id, rows.trailer_values(trailer))
        plb_rows = [
            rows.provider_adjustment_row(plb, remittance_id, position)
            for position, plb in enumerate(trailer.provider_adjustments, 1)
        ]
        for chunk in chunked(plb_rows, self.batch_size):
            queries.insert_provider_adjustments(self.session, chunk)
        self._remittance_id = None

    def _flush_payments(self) -> None:
        batch, self._payments = self._payments, []
        if not batch:
            return
        payment_rows = [
            rows.claim_payment_row(cp, remittance_id, self.source_file_id, sequence)
            for cp, remittance_id, sequence in batch
        ]
        payment_ids = queries.insert_claim_payments(self.session, payment_rows)
        adjustments: list[Row] = []
        services: list[tuple[int, ServicePayment]] = []
        for (cp, _, _), payment_id in zip(batch, payment_ids, strict=True):
            adjustments.extend(
                rows.adjustment_row(adj, payment_id, None, position, cp.segment_start)
                for position, adj in enumerate(cp.adjustments, 1)
            )
            services.extend((payment_id, svc) for svc in cp.services)
        adjustments.extend(self._insert_services(services))
        for chunk in chunked(adjustments, self.batch_size * 4):
            queries.insert_adjustments(self.session, chunk)

    def _insert_services(self, services: list[tuple[int, ServicePayment]]) -> list[Row]:
        """Insert SVC rows; return their CAS rows, which need the new service ids."""
        service_rows: list[Row] = []
        line_numbers: dict[int, int] = {}
        for payment_id, svc in services:
            line_numbers[payment_id] = line_numbers.get(payment_id, 0) + 1
            service_rows.append(rows.service_payment_row(svc, payment_id, line_numbers[payment_id]))
        service_ids = queries.insert_service_payments(self.session, service_rows)
        return [
            rows.adjustment_row(adj, payment_id, service_id, position, svc.segment_index)
            for (payment_id, svc), service_id in zip(services, service_ids, strict=True)
            for position, adj in enumerate(svc.adjustments, 1)
        ]

    # -- 837 and 277CA -----------------------------------------------------------------------

    def _flush_claims(self) -> None:
        batch, self._claims = self._claims, []
        if not batch:
            return
        claim_ids = queries.insert_claims(
            self.session, [rows.claim_row(claim, self.source_file_id) for claim in batch]
        )
        line_rows = [
            rows.service_line_row(line, claim_id, claim.segment_start)
            for claim, claim_id in zip(batch, claim_ids, strict=True)
            for line in claim.lines
        ]
        for chunk in chunked(line_rows, self.batch_size * 4):
            queries.insert_service_lines(self.session, chunk)

    def _flush_statuses(self) -> None:
        batch, self._statuses = self._statuses, []
        queries.insert_claim_statuses(self.session, batch)
