"""The 277CA writer: one claim acknowledgement answering one 837 batch, as one string."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from claimsync_console.domain import ClaimStatus, DocumentKind, Party, PersonName
from claimsync_console.x12.writer_common import (
    Envelope,
    SegmentBuffer,
    Submitter,
    amount,
    ccyymmdd,
    close_envelope,
    open_envelope,
    organisation,
    period,
    person,
)


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """A ``ClaimStatus`` plus the billing provider and service dates a 277CA must carry."""

    status: ClaimStatus
    billing_provider: Party
    service_date_from: date
    service_date_to: date


def write_277ca(
    statuses: Sequence[StatusRecord], envelope: Envelope, receiver: Submitter, reference: str
) -> str:
    """One 277CA (005010X214) answering one 837 batch: HL 20 payer, 21 submitter, 19 billing
    provider, PT claim. Consecutive statuses of one payer (then one provider) share HLs."""
    buf = SegmentBuffer()
    head = open_envelope(buf, envelope, DocumentKind.STATUS_277CA, "0001")
    at = envelope.created
    today = f"{at:%Y%m%d}"
    buf.add(f"BHT*0085*08*{reference}*{today}*{at:%H%M}*TH")
    hl = 0
    for payer_run in _runs(statuses, lambda r: r.status.payer.identifier):
        payer = payer_run[0].status.payer
        buf.add(f"HL*{hl + 1}**20*1")
        buf.add(organisation("PR", payer.name, "PI", payer.identifier))
        buf.add(f"TRN*1*{reference}{payer.identifier}")
        buf.add(f"DTP*050*D8*{today}")
        buf.add(f"DTP*009*D8*{today}")
        buf.add(f"HL*{hl + 2}*{hl + 1}*21*1")
        buf.add(organisation("41", receiver.name, "46", receiver.identifier))
        buf.add(f"TRN*2*{reference}")
        buf.add(f"STC*A1:19:PR*{today}*WQ*{amount(_charges(payer_run))}")
        receiver_hl, hl = hl + 2, hl + 2
        for provider_run in _runs(payer_run, lambda r: r.billing_provider.identifier):
            hl = _provider_statuses(buf, provider_run, hl, receiver_hl, today)
    return head + close_envelope(buf, envelope, "0001")


def _provider_statuses(
    buf: SegmentBuffer, run: list[StatusRecord], hl: int, parent: int, today: str
) -> int:
    provider = run[0].billing_provider
    provider_hl = hl = hl + 1
    buf.add(f"HL*{hl}*{parent}*19*1")
    buf.add(organisation("85", provider.name, "XX", provider.identifier))
    buf.add(f"TRN*1*{provider.identifier}")
    buf.add(f"STC*A1:19:85**WQ*{amount(_charges(run))}")
    for record in run:
        status = record.status
        hl += 1
        buf.add(f"HL*{hl}*{provider_hl}*PT")
        buf.add(person("QC", status.patient or PersonName("QC")))
        buf.add(f"TRN*2*{status.patient_control_number}")
        codes = [":".join(p for p in (c.category, c.code, c.entity) if p) for c in status.codes]
        action = "WQ" if status.accepted else "U"
        stated = ccyymmdd(status.status_date) if status.status_date else today
        charge = amount(status.charge) if status.charge is not None else "0"
        more = "".join(f"*{code}" for code in codes[1:3])  # STC10 and STC11
        buf.add(f"STC*{codes[0]}*{stated}*{action}*{charge}*****{more}")
        if status.payer_claim_control_number:
            buf.add(f"REF*1K*{status.payer_claim_control_number}")
        buf.add(f"DTP*472*{period(record.service_date_from, record.service_date_to)}")
    return hl


def _charges(records: Sequence[StatusRecord]) -> Decimal:
    return sum((r.status.charge or Decimal(0) for r in records), Decimal("0.00"))


def _runs(
    records: Iterable[StatusRecord], key: Callable[[StatusRecord], str]
) -> list[list[StatusRecord]]:
    """Split into runs of consecutive records that share a key."""
    runs: list[list[StatusRecord]] = []
    last = None
    for record in records:
        value = key(record)
        if not runs or value != last:
            runs.append([])
            last = value
        runs[-1].append(record)
    return runs
