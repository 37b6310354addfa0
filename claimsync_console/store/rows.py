"""Domain objects -> row dicts for the bulk inserts in ``queries``.

Row dicts (not ORM objects) are what Core executemany wants, and building them here keeps the
mapping in one place. Amounts are checked for whole cents *here*, with the segment position, so a
sub-cent amount in a file becomes a finding that quarantines the file instead of an exception from
deep inside a batch insert. JSON columns hold only JSON-native values (Decimal and date as text).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from claimsync_console.domain import (
    Adjustment,
    Amount,
    Claim,
    ClaimPayment,
    ClaimStatus,
    DatedValue,
    PersonName,
    ProviderAdjustment,
    Quantity,
    Reference,
    RemittanceHeader,
    RemittanceTrailer,
    ServiceLine,
    ServicePayment,
)
from claimsync_console.store.types import MoneyPrecisionError, to_cents

Row = dict[str, Any]


class UnstorableValueError(ValueError):
    """A value from the file that cannot be stored exactly (e.g. a fraction of a cent)."""

    def __init__(self, segment_index: int, segment_id: str, message: str) -> None:
        super().__init__(message)
        self.segment_index = segment_index
        self.segment_id = segment_id


def checked_money(value: Decimal, segment_index: int, segment_id: str) -> Decimal:
    try:
        to_cents(value)
    except MoneyPrecisionError as exc:
        raise UnstorableValueError(segment_index, segment_id, str(exc)) from exc
    return value


def _optional_money(value: Decimal | None, segment_index: int, segment_id: str) -> Decimal | None:
    return None if value is None else checked_money(value, segment_index, segment_id)


def person_json(person: PersonName | None) -> dict[str, Any] | None:
    if person is None:
        return None
    return {
        "entity_code": person.entity_code,
        "last_name": person.last_name,
        "first_name": person.first_name,
        "middle_name": person.middle_name,
        "id_qualifier": person.id_qualifier,
        "member_id": person.member_id,
        "date_of_birth": person.date_of_birth.isoformat() if person.date_of_birth else None,
    }


def references_json(refs: tuple[Reference, ...]) -> list[dict[str, str]]:
    return [{"qualifier": r.qualifier, "value": r.value} for r in refs]


def dates_json(dates: tuple[DatedValue, ...]) -> list[dict[str, str | None]]:
    return [
        {
            "qualifier": d.qualifier,
            "value": d.value.isoformat() if d.value else None,
            "end": d.end.isoformat() if d.end else None,
        }
        for d in dates
    ]


def amounts_json(amounts: tuple[Amount, ...]) -> list[dict[str, str]]:
    return [{"qualifier": a.qualifier, "amount": str(a.amount)} for a in amounts]


def quantities_json(quantities: tuple[Quantity, ...]) -> list[dict[str, str]]:
    return [{"qualifier": q.qualifier, "quantity": str(q.quantity)} for q in quantities]


def remittance_row(header: RemittanceHeader, source_file_id: int) -> Row:
    at = header.segment_start
    return {
        "source_file_id": source_file_id,
        "interchange_control_number": header.interchange_control_number,
        "group_control_number": header.group_control_number,
        "transaction_control_number": header.transaction_control_number,
        "version": header.version,
        "sender_id": header.sender_id,
        "receiver_id": header.receiver_id,
        "handling_code": header.handling_code,
        "payment_amount": checked_money(header.payment_amount, at, "BPR"),
        "credit_debit": header.credit_debit,
        "payment_method": header.payment_method,
        "payment_format": header.payment_format,
        "payment_date": header.payment_date,
        "trace_type": header.trace_type,
        "trace_number": header.trace_number,
        "originator_id": header.originator_id,
        "payer_name": header.payer.name,
        "payer_id_qualifier": header.payer.id_qualifier,
        "payer_identifier": header.payer.identifier,
        "payee_name": header.payee.name,
        "payee_id_qualifier": header.payee.id_qualifier,
        "payee_identifier": header.payee.identifier,
        "payer_contact": header.payer_contact,
        "production_date": header.production_date,
        "segment_start": header.segment_start,
    }


def trailer_values(trailer: RemittanceTrailer) -> Row:
    at = trailer.segment_end
    return {
        "provider_adjustment_total": checked_money(trailer.provider_adjustment_total, at, "PLB"),
        "claim_payment_count": trailer.claim_payment_count,
        "paid_total": checked_money(trailer.paid_total, at, "SE"),
        "segment_end": trailer.segment_end,
    }


def provider_adjustment_row(plb: ProviderAdjustment, remittance_id: int, position: int) -> Row:
    return {
        "remittance_id": remittance_id,
        "position": position,
        "provider_id": plb.provider_id,
        "fiscal_period_date": plb.fiscal_period_date,
        "reason_code": plb.reason_code,
        "reference": plb.reference,
        "amount": checked_money(plb.amount, plb.segment_index, "PLB"),
        "segment_index": plb.segment_index,
    }


def claim_payment_row(
    cp: ClaimPayment, remittance_id: int, source_file_id: int, sequence: int
) -> Row:
    at = cp.segment_start
    return {
        "remittance_id": remittance_id,
        "source_file_id": source_file_id,
        "sequence": sequence,
        "patient_control_number": cp.patient_control_number,
        "status_code": cp.status_code,
        "charge": checked_money(cp.charge, at, "CLP"),
        "paid": checked_money(cp.paid, at, "CLP"),
        "patient_responsibility": _optional_money(cp.patient_responsibility, at, "CLP"),
        "filing_indicator": cp.filing_indicator,
        "payer_claim_control_number": cp.payer_claim_control_number,
        "facility_code": cp.facility_code,
        "frequency_code": cp.frequency_code,
        "drg_code": cp.drg_code,
        "segment_start": cp.segment_start,
        "segment_end": cp.segment_end,
        "patient": person_json(cp.patient),
        "insured": person_json(cp.insured),
        "corrected_patient": person_json(cp.corrected_patient),
        "corrected_insured": person_json(cp.corrected_insured),
        "rendering_provider": person_json(cp.rendering_provider),
        "references": references_json(cp.references),
        "dates": dates_json(cp.dates),
        "amounts": amounts_json(cp.amounts),
        "quantities": quantities_json(cp.quantities),
        "inpatient_remarks": list(cp.inpatient_remarks),
        "outpatient_remarks": list(cp.outpatient_remarks),
    }


def service_payment_row(svc: ServicePayment, claim_payment_id: int, line_number: int) -> Row:
    at = svc.segment_index
    return {
        "claim_payment_id": claim_payment_id,
        "line_number": line_number,
        "procedure_qualifier": svc.procedure_qualifier,
        "procedure_code": svc.procedure_code,
        "modifiers": list(svc.modifiers),
        "charge": checked_money(svc.charge, at, "SVC"),
        "paid": checked_money(svc.paid, at, "SVC"),
        "revenue_code": svc.revenue_code,
        "units_paid": svc.units_paid,
        "original_procedure_code": svc.original_procedure_code,
        "original_units": svc.original_units,
        "segment_index": svc.segment_index,
        "references": references_json(svc.references),
        "dates": dates_json(svc.dates),
        "amounts": amounts_json(svc.amounts),
        "quantities": quantities_json(svc.quantities),
        "remark_codes": list(svc.remark_codes),
    }


def adjustment_row(
    adj: Adjustment,
    claim_payment_id: int,
    service_payment_id: int | None,
    position: int,
    segment_index: int,
) -> Row:
    return {
        "claim_payment_id": claim_payment_id,
        "service_payment_id": service_payment_id,
        "position": position,
        "group_code": adj.group,
        "reason_code": adj.reason_code,
        "amount": checked_money(adj.amount, segment_index, "CAS"),
        "quantity": adj.quantity,
    }


def claim_row(claim: Claim, source_file_id: int) -> Row:
    at = claim.segment_start
    return {
        "source_file_id": source_file_id,
        "transaction_control_number": claim.transaction_control_number,
        "kind": claim.kind.value,
        "patient_control_number": claim.patient_control_number,
        "billed_amount": checked_money(claim.billed_amount, at, "CLM"),
        "payer_name": claim.payer.name,
        "payer_id_qualifier": claim.payer.id_qualifier,
        "payer_identifier": claim.payer.identifier,
        "billing_provider_name": claim.billing_provider.name,
        "billing_provider_id_qualifier": claim.billing_provider.id_qualifier,
        "billing_provider_identifier": claim.billing_provider.identifier,
        "billing_provider_npi": claim.billing_provider_npi,
        "rendering_provider_npi": claim.rendering_provider_npi,
        "facility_code": claim.facility_code,
        "facility_code_qualifier": claim.facility_code_qualifier,
        "frequency_code": claim.frequency_code,
        "service_date_from": claim.service_date_from,
        "service_date_to": claim.service_date_to,
        "subscriber": person_json(claim.subscriber),
        "patient": person_json(claim.patient),
        "payer_claim_control_number": claim.payer_claim_control_number,
        "references": references_json(claim.references),
        "claim_filing_indicator": claim.claim_filing_indicator,
        "segment_start": claim.segment_start,
        "segment_end": claim.segment_end,
    }


def service_line_row(line: ServiceLine, claim_id: int, segment_index: int) -> Row:
    return {
        "claim_id": claim_id,
        "line_number": line.line_number,
        "procedure_qualifier": line.procedure_qualifier,
        "procedure_code": line.procedure_code,
        "modifiers": list(line.modifiers),
        "charge": checked_money(line.charge, segment_index, "SV"),
        "units": line.units,
        "unit_basis": line.unit_basis,
        "revenue_code": line.revenue_code,
        "service_date": line.service_date,
        "service_date_end": line.service_date_end,
    }


def claim_status_row(status: ClaimStatus, source_file_id: int) -> Row:
    at = status.segment_start
    return {
        "source_file_id": source_file_id,
        "transaction_control_number": status.transaction_control_number,
        "patient_control_number": status.patient_control_number,
        "payer_claim_control_number": status.payer_claim_control_number,
        "status": status.status.value,
        "codes": [
            {"category": c.category, "code": c.code, "entity": c.entity}
            | ({"message": c.message} if c.message else {})
            for c in status.codes
        ],
        "status_date": status.status_date,
        "charge": _optional_money(status.charge, at, "STC"),
        "payer_name": status.payer.name,
        "payer_identifier": status.payer.identifier,
        "patient": person_json(status.patient),
        "segment_start": status.segment_start,
        "segment_end": status.segment_end,
    }
