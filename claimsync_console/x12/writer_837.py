"""The 837P/837I writer; it streams one claim at a time because batches hold thousands."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TextIO

from claimsync_console.domain import Claim, DocumentKind, Party, PersonName
from claimsync_console.x12.writer_common import (
    Address,
    Envelope,
    SegmentBuffer,
    Submitter,
    add_address,
    amount,
    ccyymmdd,
    close_envelope,
    number,
    open_envelope,
    organisation,
    period,
    person,
)


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """A ``Claim`` plus what an 837 must carry and the domain does not keep."""

    claim: Claim
    billing_address: Address
    billing_tax_id: str
    subscriber_address: Address
    diagnoses: tuple[str, ...] = ("R69",)
    subscriber_gender: str = "U"
    patient_gender: str = "U"
    patient_relationship: str = "19"  # PAT01 when the patient is a dependent
    responsibility: str = "P"  # SBR01: P primary, S secondary
    rendering_provider: PersonName | None = None


class Claim837Writer:
    """Streams one 837 interchange: ``write`` the claims one by one, then ``close()``.

    Each claim gets its own subscriber HL (and a patient HL when the patient is a dependent); a
    new billing-provider HL opens whenever the billing NPI changes."""

    def __init__(
        self,
        out: TextIO,
        kind: DocumentKind,
        envelope: Envelope,
        submitter: Submitter,
        receiver: Party,
        reference: str,
    ) -> None:
        if kind not in (DocumentKind.CLAIM_837P, DocumentKind.CLAIM_837I):
            raise ValueError(f"not an 837 kind: {kind}")
        self.out, self.kind, self.envelope = out, kind, envelope
        self.institutional = kind is DocumentKind.CLAIM_837I
        self.buf = buf = SegmentBuffer()
        self.hl = self.provider_hl = self.claim_count = 0
        self.provider_npi: str | None = None
        at = envelope.created
        out.write(open_envelope(buf, envelope, kind, "0001"))
        buf.add(f"BHT*0019*00*{reference}*{at:%Y%m%d}*{at:%H%M}*CH")
        buf.add(organisation("41", submitter.name, "46", submitter.identifier))
        buf.add(f"PER*IC*{submitter.contact_name}*TE*{submitter.phone}")
        buf.add(organisation("40", receiver.name, "46", receiver.identifier))

    def write(self, record: ClaimRecord) -> None:
        if record.claim.billing_provider_npi != self.provider_npi:
            self._billing_provider(record)
        self._subscriber(record)
        self._claim(record)
        self.claim_count += 1
        self.out.write(self.buf.take())

    def close(self) -> None:
        self.out.write(close_envelope(self.buf, self.envelope, "0001"))

    def _billing_provider(self, record: ClaimRecord) -> None:
        claim, buf = record.claim, self.buf
        self.provider_npi = claim.billing_provider_npi
        self.hl += 1
        self.provider_hl = self.hl
        buf.add(f"HL*{self.hl}**20*1")
        buf.add(organisation("85", claim.billing_provider.name, "XX", self.provider_npi))
        add_address(buf, record.billing_address)
        buf.add(f"REF*EI*{record.billing_tax_id}")

    def _subscriber(self, record: ClaimRecord) -> None:
        claim, buf = record.claim, self.buf
        patient = claim.patient
        self.hl += 1
        subscriber_hl = self.hl
        buf.add(f"HL*{subscriber_hl}*{self.provider_hl}*22*{'0' if patient is None else '1'}")
        relationship = "18" if patient is None else ""
        buf.add(f"SBR*{record.responsibility}*{relationship}*******{claim.claim_filing_indicator}")
        buf.add(person("IL", claim.subscriber))
        add_address(buf, record.subscriber_address)
        _demographics(buf, claim.subscriber, record.subscriber_gender)
        buf.add(organisation("PR", claim.payer.name, "PI", claim.payer.identifier))
        if patient is not None:
            self.hl += 1
            buf.add(f"HL*{self.hl}*{subscriber_hl}*23*0")
            buf.add(f"PAT*{record.patient_relationship}")
            buf.add(f"NM1*QC*1*{patient.last_name}*{patient.first_name}*{patient.middle_name}")
            add_address(buf, record.subscriber_address)
            _demographics(buf, patient, record.patient_gender)

    def _claim(self, record: ClaimRecord) -> None:
        claim, buf, institutional = record.claim, self.buf, self.institutional
        qualifier = claim.facility_code_qualifier or ("A" if institutional else "B")
        place = f"{claim.facility_code}:{qualifier}:{claim.frequency_code}"
        signature = "" if institutional else "Y"  # CLM06 is not used in the 837I
        billed = amount(claim.billed_amount)
        buf.add(f"CLM*{claim.patient_control_number}*{billed}***{place}*{signature}*A*Y*Y")
        start = claim.service_date_from
        if institutional and start is not None:
            end = claim.service_date_to or start
            buf.add(f"DTP*434*RD8*{ccyymmdd(start)}-{ccyymmdd(end)}")
            buf.add(f"CL1*{'1' if claim.facility_code == '11' else '3'}*1*01")
        if claim.payer_claim_control_number:
            buf.add(f"REF*F8*{claim.payer_claim_control_number}")
        for ref in claim.references:
            buf.add(f"REF*{ref.qualifier}*{ref.value}")
        codes = record.diagnoses
        if institutional:  # principal, then the others in their own HI
            buf.add(f"HI*ABK:{codes[0]}")
            if len(codes) > 1:
                buf.add("HI*" + "*".join(f"ABF:{c}" for c in codes[1:13]))
        else:
            buf.add("HI*" + "*".join([f"ABK:{codes[0]}", *(f"ABF:{c}" for c in codes[1:12])]))
        if claim.rendering_provider_npi:
            doctor = record.rendering_provider or PersonName("82", last_name="PROVIDER")
            role = "71" if institutional else "82"  # attending (837I) or rendering (837P)
            named = replace(doctor, id_qualifier="XX", member_id=claim.rendering_provider_npi)
            buf.add(person(role, named))
        self._lines(claim)

    def _lines(self, claim: Claim) -> None:
        buf = self.buf
        for line in claim.lines:
            buf.add(f"LX*{line.line_number}")
            procedure = ":".join((line.procedure_qualifier, line.procedure_code, *line.modifiers))
            units = number(line.units) or "1"
            basis = line.unit_basis or "UN"
            charge = amount(line.charge)
            if self.institutional:
                procedure = procedure if line.procedure_code else ""
                buf.add(f"SV2*{line.revenue_code}*{procedure}*{charge}*{basis}*{units}")
            else:
                buf.add(f"SV1*{procedure}*{charge}*{basis}*{units}***1")
            served = line.service_date or claim.service_date_from
            if served is not None:
                buf.add(f"DTP*472*{period(served, line.service_date_end)}")


def _demographics(buf: SegmentBuffer, who: PersonName, gender: str) -> None:
    if who.date_of_birth is not None:
        buf.add(f"DMG*D8*{ccyymmdd(who.date_of_birth)}*{gender or 'U'}")


def write_837(
    claims: Iterable[ClaimRecord],
    kind: DocumentKind,
    envelope: Envelope,
    submitter: Submitter,
    receiver: Party,
    reference: str = "1",
) -> str:
    """One interchange with one 837 transaction holding ``claims``, as a string."""
    out = io.StringIO()
    writer = Claim837Writer(out, kind, envelope, submitter, receiver, reference)
    for record in claims:
        writer.write(record)
    writer.close()
    return out.getvalue()
