"""Deterministic sample data: 837P/837I batches, their 277CA, and 835 checks with planted problems.

Same seed, same bytes: all randomness comes from one ``random.Random(seed)`` drawn in a fixed
order, and every date derives from ``BASE_DATE``, never from the clock. Claims stream straight
into open 837 files; only one check per payer and facility (at most a few hundred payments) and
one 277CA batch are held in memory, so 100k claims take seconds and little memory.

``manifest.json`` records what was planted (counts, the affected patient control numbers) and
what every check must add up to, for the tests and the engine's end-to-end test.
"""

from __future__ import annotations

import argparse
import gc
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any, TextIO

from claimsync_console.domain import (
    ZERO,
    Claim,
    ClaimPayment,
    ClaimStatus,
    DocumentKind,
    Party,
    PersonName,
    StatusCategoryClass,
    StatusCode,
)
from claimsync_console.engine import samplegen_scenarios as sc
from claimsync_console.engine.samplegen_checks import CheckWriter, Stream
from claimsync_console.engine.samplegen_data import (
    BASE_DATE,
    FACILITIES,
    PAYERS,
    UNUSUAL_CARCS,
    Facility,
    PayerProfile,
)
from claimsync_console.engine.samplegen_manifest import GenerationSummary, write_manifest
from claimsync_console.engine.samplegen_readjudication import correct, has_contractual, reverse
from claimsync_console.x12.writer import (
    Claim837Writer,
    ClaimRecord,
    Envelope,
    StatusRecord,
    Submitter,
    write_277ca,
)

CLEARINGHOUSE = Party("SAMPLE CLEARINGHOUSE", "46", "SMPCLEAR")
REJECTION_RATE = 0.03
UNKNOWN_PCN_RATE = 0.031
UNUSUAL_CARC_RATE = 0.011
MISMATCH_RATE = 0.01
REVERSAL_RATE = 0.022
REJECTIONS = (("A7", "164", "IL"), ("A7", "187", ""), ("A8", "562", "85"), ("A7", "21", ""))
# (upper bound of the draw, outcome); the rest is a plain payment
OUTCOMES = (
    (0.09, "denied"),
    (0.14, "partial"),
    (0.19, "secondary"),
    (0.21, "co16"),
    (0.24, "co97"),
)
FACILITY_WEIGHTS = list(accumulate(f.weight for f in FACILITIES))
PROBLEMS = ("rejected_277ca", "unknown_pcn", "unusual_carc", "amount_mismatch")


class _Batch:
    """One open 837 file and the statuses its 277CA will carry."""

    def __init__(self, path: Path, writer: Claim837Writer, stream: TextIO, label: str) -> None:
        self.path, self.writer, self.stream, self.label = path, writer, stream, label
        self.statuses: list[tuple[int, StatusRecord]] = []


class _Generator:
    def __init__(self, claims: int, seed: int, out_dir: Path, claims_per_file: int) -> None:
        self.claims, self.seed, self.out = claims, seed, out_dir
        self.claims_per_file = claims_per_file
        self.rng = random.Random(seed)
        self.control = 0
        self.icn = 0
        self.counts: Counter[str] = Counter()
        self.problems: dict[str, list[str]] = {name: [] for name in PROBLEMS}
        self.files: list[dict[str, Any]] = []
        self.batches: dict[tuple[str, DocumentKind, bool], _Batch] = {}
        self.batch_numbers: Counter[tuple[str, DocumentKind, bool]] = Counter()
        check_size = max(10, min(500, claims // 20))
        self.checks = CheckWriter(
            self.rng, out_dir, check_size, self.counts, self._envelope, self._record_file
        )
        self.patients = [sc.make_patient(self.rng) for _ in range(max(25, claims // 3))]

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> GenerationSummary:
        for folder in ("837", "277ca", "835"):  # the folder must match its new manifest
            (self.out / folder).mkdir(parents=True, exist_ok=True)
            for stale in (self.out / folder).glob("*.x12"):
                stale.unlink()
        for seq in range(1, self.claims + 1):
            self._claim(seq)
        for key in list(self.batches):
            self._close_batch(key)
        self.checks.flush()
        return self._manifest()

    def _claim(self, seq: int) -> None:
        rng = self.rng
        facility = rng.choices(FACILITIES, cum_weights=FACILITY_WEIGHTS)[0]
        patient = sc.pick(rng, self.patients)
        payer = PAYERS[patient.payer]
        plan = self._plan(payer)
        record = self._record(f"{facility.code}{seq:07d}", facility, patient, payer, plan)
        kind = record.claim.kind
        self.counts[f"claims_{kind.value}"] += 1
        batch = self._batch(facility, kind, replacement=False)
        batch.writer.write(record)
        icn = "" if plan.rejected else self._next_icn(payer)
        batch.statuses.append((patient.payer, self._status(record, icn, plan)))
        if batch.writer.claim_count >= self.claims_per_file:
            self._close_batch((facility.code, kind, False))
        if plan.rejected:
            self.problems["rejected_277ca"].append(record.claim.patient_control_number)
            return
        payment = sc.adjudicate(rng, record, plan, payer, icn)
        self._note_problems(payment, plan)
        stream = self.checks.stream(payer, facility)
        self.checks.add(stream, payment)
        if plan.reversal and has_contractual(payment):
            self._replace(stream, record, payment, patient.payer)
        if rng.random() < UNKNOWN_PCN_RATE:
            self._unknown(seq, facility)

    def _plan(self, payer: PayerProfile) -> sc.Plan:
        rng = self.rng
        plan = sc.Plan(rejected=rng.random() < REJECTION_RATE)
        draw = rng.random()
        plan.outcome = next((name for bound, name in OUTCOMES if draw < bound), "paid")
        if plan.outcome == "secondary" and not payer.takes_secondary:
            plan.outcome = "paid"
        plan.denial_reason = sc.pick(rng, ("50", "50", "29", "197", "197"))
        if plan.outcome == "partial":
            plan.denial_reason = sc.pick(rng, ("50", "197"))
        if plan.rejected:
            return plan
        if plan.outcome != "denied" and rng.random() < REVERSAL_RATE:
            plan.reversal = plan.outcome != "secondary"
        elif plan.outcome in ("paid", "secondary") and rng.random() < UNUSUAL_CARC_RATE:
            plan.unusual_code = sc.pick(rng, UNUSUAL_CARCS)
        elif rng.random() < MISMATCH_RATE:
            plan.mismatch_cents = sc.between(rng, 100, 5000)
        return plan

    def _record(
        self,
        pcn: str,
        facility: Facility,
        patient: sc.Patient,
        payer: PayerProfile,
        plan: sc.Plan,
    ) -> ClaimRecord:
        rng = self.rng
        institutional = sc.between(rng, 1, 100) <= facility.institutional_pct
        inpatient = institutional and rng.random() < 0.2
        served = BASE_DATE - timedelta(days=sc.between(rng, 7, 60))
        minimum = 2 if plan.outcome in ("partial", "co97", "co16") else 1
        lines = sc.make_lines(rng, institutional, inpatient, served, minimum)
        until = served + timedelta(days=int(lines[0].units or 1)) if inpatient else served
        doctor = sc.pick(rng, facility.doctors)
        kind = DocumentKind.CLAIM_837I if institutional else DocumentKind.CLAIM_837P
        place = (
            ("11" if inpatient else "13")
            if institutional
            else ("22" if facility.institutional_pct else "11")
        )
        claim = Claim(
            kind=kind,
            patient_control_number=pcn,
            billed_amount=sum((line.charge for line in lines), ZERO),
            payer=Party(payer.name, "PI", payer.payer_id),
            subscriber=patient.subscriber,
            patient=patient.patient,
            billing_provider=Party(facility.name, "XX", facility.npi),
            billing_provider_npi=facility.npi,
            rendering_provider_npi=doctor[2],
            facility_code=place,
            facility_code_qualifier="A" if institutional else "B",
            frequency_code="1",
            service_date_from=served,
            service_date_to=until,
            lines=lines,
            claim_filing_indicator=payer.filing_indicator,
        )
        return ClaimRecord(
            claim,
            facility.address,
            facility.tax_id,
            patient.address,
            sc.diagnoses(rng),
            patient.subscriber_gender,
            patient.patient_gender,
            "19",
            "S" if plan.outcome == "secondary" else "P",
            PersonName("82", doctor[0], doctor[1]),
        )

    def _status(self, record: ClaimRecord, icn: str, plan: sc.Plan) -> StatusRecord:
        claim = record.claim
        if plan.rejected:
            code = sc.pick(self.rng, REJECTIONS)
            state, codes = StatusCategoryClass.REJECTED, (StatusCode(*code),)
        else:
            state, codes = StatusCategoryClass.ACCEPTED, (StatusCode("A2", "20", "PR"),)
        shown = claim.patient or claim.subscriber
        patient = PersonName(
            "QC", shown.last_name, shown.first_name, "", "MI", claim.subscriber.member_id
        )
        status = ClaimStatus(
            claim.patient_control_number,
            icn,
            state,
            codes,
            BASE_DATE + timedelta(days=1),
            claim.billed_amount,
            claim.payer,
            patient,
        )
        served = claim.service_date_from or BASE_DATE
        return StatusRecord(status, claim.billing_provider, served, claim.service_date_to or served)

    def _note_problems(self, payment: ClaimPayment, plan: sc.Plan) -> None:
        pcn = payment.patient_control_number
        if plan.unusual_code is not None:
            self.problems["unusual_carc"].append(pcn)
        if plan.mismatch_cents:
            self.problems["amount_mismatch"].append(pcn)
        self.counts[f"outcome_{plan.outcome}"] += 1

    def _replace(
        self, stream: Stream, record: ClaimRecord, payment: ClaimPayment, payer_index: int
    ) -> None:
        """A replacement 837 (frequency 7, REF*F8), then a reversal and a correction in the
        stream's next check."""
        claim = record.claim
        replacement = replace(
            record,
            claim=replace(
                claim,
                frequency_code="7",
                payer_claim_control_number=payment.payer_claim_control_number,
            ),
        )
        batch = self._batch(stream.facility, claim.kind, replacement=True)
        batch.writer.write(replacement)
        new_icn = self._next_icn(stream.payer)
        batch.statuses.append((payer_index, self._status(replacement, new_icn, sc.Plan())))
        stream.carry += [reverse(payment), correct(self.rng, payment, new_icn)]
        self.counts["replacement_claims"] += 1
        self.counts["reversals"] += 1

    def _unknown(self, seq: int, facility: Facility) -> None:
        """A payment for a claim that no 837 carries (another system's claim, a typo)."""
        patient = sc.pick(self.rng, self.patients)
        payer = PAYERS[patient.payer]
        plan = sc.Plan()
        record = self._record(f"{facility.code}9{seq:07d}", facility, patient, payer, plan)
        payment = sc.adjudicate(self.rng, record, plan, payer, self._next_icn(payer))
        self.problems["unknown_pcn"].append(payment.patient_control_number)
        self.checks.add(self.checks.stream(payer, facility), payment)

    # -- 837 and 277CA files -----------------------------------------------------------------

    def _batch(self, facility: Facility, kind: DocumentKind, replacement: bool) -> _Batch:
        key = (facility.code, kind, replacement)
        batch = self.batches.get(key)
        if batch is not None:
            return batch
        self.batch_numbers[key] += 1
        number = self.batch_numbers[key]
        label = f"{kind.value}_{facility.code}_{'R' if replacement else ''}{number:04d}"
        path = self.out / "837" / f"{label}.x12"
        stream = path.open("w", encoding="ascii", newline="")
        envelope = self._envelope(f"SMP{facility.code}", CLEARINGHOUSE.identifier, 8, number)
        submitter = Submitter(facility.name, f"SMP{facility.code}")
        writer = Claim837Writer(stream, kind, envelope, submitter, CLEARINGHOUSE, label)
        self.batches[key] = batch = _Batch(path, writer, stream, label)
        return batch

    def _close_batch(self, key: tuple[str, DocumentKind, bool]) -> None:
        batch = self.batches.pop(key)
        batch.writer.close()
        batch.stream.close()
        kind = key[1]
        entry = {"kind": kind.value, "claims": batch.writer.claim_count, "replacement": key[2]}
        self._record_file(batch.path, entry)
        statuses = [s for _, s in sorted(batch.statuses, key=lambda pair: pair[0])]
        envelope = self._envelope(CLEARINGHOUSE.identifier, f"SMP{key[0]}", 9, 0, days=1)
        submitter = Submitter(statuses[0].billing_provider.name, f"SMP{key[0]}")
        path = self.out / "277ca" / f"277CA_{batch.label}.x12"
        path.write_text(write_277ca(statuses, envelope, submitter, batch.label), encoding="ascii")
        rejected = sum(1 for s in statuses if not s.status.accepted)
        self._record_file(path, {"kind": "277CA", "statuses": len(statuses), "rejected": rejected})

    def _envelope(
        self, sender: str, receiver: str, hour: int, minute: int, days: int = 0
    ) -> Envelope:
        self.control += 1
        created = datetime.combine(BASE_DATE + timedelta(days=days), time(hour, minute % 60), UTC)
        return Envelope(sender, receiver, self.control, created)

    def _record_file(self, path: Path, entry: dict[str, Any]) -> None:
        self.files.append({"path": path.relative_to(self.out).as_posix(), **entry})

    def _next_icn(self, payer: PayerProfile) -> str:
        self.icn += 1
        return f"{PAYERS.index(payer) + 1}26005{self.icn:08d}"

    def _manifest(self) -> GenerationSummary:
        return write_manifest(
            self.out,
            self.seed,
            self.claims,
            self.counts,
            self.problems,
            self.files,
            self.checks.checks,
        )


def generate(
    claims: int, seed: int, out_dir: Path, *, claims_per_file: int = 5000
) -> GenerationSummary:
    """Write a deterministic sample set for ``claims`` billed claims under ``out_dir``."""
    if claims < 1:
        raise ValueError("claims must be at least 1")
    # The generator makes no reference cycles, so reference counting frees everything; the
    # cyclic collector would only rescan the live patient pool and open checks again and again,
    # which cost about a third of a 100k-claim run.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Generator(claims, seed, Path(out_dir), claims_per_file).run()
    finally:
        if was_enabled:
            gc.enable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("sample_data"))
    parser.add_argument("--claims-per-file", type=int, default=5000)
    args = parser.parse_args(argv)
    summary = generate(args.claims, args.seed, args.out, claims_per_file=args.claims_per_file)
    print(
        f"{summary.claims} claims, {len(summary.files)} files, {summary.counts['checks']} checks,"
        f" paid {summary.paid_total}, payments {summary.payment_total} -> {summary.out_dir}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
