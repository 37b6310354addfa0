"""835 checks for the sample-data generator: each payer's payments to one facility, cut into
checks of a drawn size, with the occasional provider-level adjustment (PLB).

Only the open check of each (payer, facility) stream is held in memory. A reversal and its
correction are ``carry``-ed into the stream's next check, so the original is always paid in an
earlier file than its reversal, as payers do it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from claimsync_console.domain import ZERO, ClaimPayment, ProviderAdjustment
from claimsync_console.engine import samplegen_scenarios as sc
from claimsync_console.engine.samplegen_data import BASE_DATE, Facility, PayerProfile
from claimsync_console.x12.writer import Envelope, RemittanceExtras, write_835

# (sender, receiver, hour, minute, days after BASE_DATE) -> the next envelope; the generator owns
# the control-number counter that the 837, 277CA and 835 files share
EnvelopeFactory = Callable[[str, str, int, int, int], Envelope]
FileRecorder = Callable[[Path, dict[str, Any]], None]


@dataclass(slots=True)
class Stream:
    """One payer's payments to one facility, cut into checks."""

    payer: PayerProfile
    facility: Facility
    target: int
    pending: list[ClaimPayment] = field(default_factory=list)
    carry: list[ClaimPayment] = field(default_factory=list)
    checks: int = 0
    paid_icns: list[str] = field(default_factory=list)


class CheckWriter:
    """Collects claim payments per stream and writes each full check as one 835 file.

    It draws from the generator's ``rng`` in the generator's order, so the output stays
    deterministic; ``checks`` is what the manifest lists."""

    def __init__(
        self,
        rng: random.Random,
        out: Path,
        check_size: int,
        counts: Counter[str],
        envelope: EnvelopeFactory,
        record_file: FileRecorder,
    ) -> None:
        self.rng, self.out, self.check_size, self.counts = rng, out, check_size, counts
        self._envelope, self._record_file = envelope, record_file
        self.trace = 0
        self.checks: list[dict[str, Any]] = []
        self.streams: dict[tuple[str, str], Stream] = {}

    def stream(self, payer: PayerProfile, facility: Facility) -> Stream:
        key = (payer.key, facility.code)
        if key not in self.streams:
            self.streams[key] = Stream(payer, facility, self._check_target())
        return self.streams[key]

    def add(self, stream: Stream, payment: ClaimPayment) -> None:
        stream.pending.append(payment)
        if len(stream.pending) >= stream.target:
            self._write_check(stream)

    def flush(self) -> None:
        """Write every open check, then the carried reversals and corrections."""
        for stream in self.streams.values():
            while stream.pending or stream.carry:
                if not stream.pending:  # the originals went out in the last check
                    stream.pending, stream.carry = stream.carry, []
                self._write_check(stream)

    def _check_target(self) -> int:
        return sc.between(self.rng, self.check_size // 2, self.check_size)

    def _write_check(self, stream: Stream) -> None:
        payments, stream.pending, stream.carry = stream.pending, stream.carry, []
        stream.target = self._check_target()
        stream.checks += 1
        payer, facility = stream.payer, stream.facility
        paid_on = BASE_DATE + timedelta(days=14 + 7 * (stream.checks - 1))
        paid_total = sum((p.paid for p in payments), ZERO)
        plbs = self._plbs(stream, payments, paid_total, paid_on)
        plb_total = sum((p.amount for p in plbs), ZERO)
        amount = paid_total - plb_total
        self.trace += 1
        method = payer.payment_method if amount else "NON"
        trace = f"{70000000 + self.trace}" if method == "CHK" else f"{payer.key}EFT{self.trace:08d}"
        envelope = self._envelope(
            payer.payer_id, f"SMP{facility.code}", 6, 0, (paid_on - BASE_DATE).days
        )
        header = sc.remittance_header(payer, facility, envelope, amount, method, trace, paid_on)
        extras = RemittanceExtras(payer.address, payer.payer_id, payee_tax_id=facility.tax_id)
        path = self.out / "835" / f"835_{payer.key}_{facility.code}_{stream.checks:04d}.x12"
        path.write_text(write_835(envelope, header, payments, plbs, extras), encoding="ascii")
        paid_icns = [p.payer_claim_control_number for p in payments if p.paid > 0]
        stream.paid_icns = (stream.paid_icns + paid_icns)[-20:]
        self.counts["claim_payments"] += len(payments)
        self.counts["plb_adjustments"] += len(plbs)
        check = {
            "trace_number": trace,
            "payer_id": payer.payer_id,
            "payee_npi": facility.npi,
            "payment_method": method,
            "payment_date": paid_on.isoformat(),
            "claim_payments": len(payments),
            "paid_total": str(paid_total),
            "plb_total": str(plb_total),
            "payment_amount": str(amount),
        }
        self.checks.append({"file": path.relative_to(self.out).as_posix(), **check})
        self._record_file(path, {"kind": "835", **check})

    def _plbs(
        self, stream: Stream, payments: list[ClaimPayment], paid_total: Decimal, paid_on: date
    ) -> list[ProviderAdjustment]:
        """L6 interest (negative: it adds to the check), WO recoupment and FB forwarding balance
        (positive: they reduce it), never taking the check below zero."""
        rng, npi = self.rng, stream.facility.npi
        fiscal = date(paid_on.year, 12, 31)
        icns = [p.payer_claim_control_number for p in payments if p.paid > 0] or ["0"]
        plbs: list[ProviderAdjustment] = []
        if rng.random() < 0.10:
            interest = sc.cents(-sc.between(rng, 5, 2500))
            plbs.append(ProviderAdjustment(npi, fiscal, "L6", sc.pick(rng, icns), interest))
        room = paid_total - sum((p.amount for p in plbs), ZERO)
        if rng.random() < 0.08 and stream.paid_icns and room > 20:
            recouped = min(sc.cents(sc.between(rng, 2000, 30000)), sc.pct(room, 30))
            plbs.append(
                ProviderAdjustment(npi, fiscal, "WO", sc.pick(rng, stream.paid_icns), recouped)
            )
            room -= recouped
        if rng.random() < 0.04 and room > 20:
            forwarded = min(sc.cents(sc.between(rng, 1000, 15000)), sc.pct(room, 20))
            plbs.append(ProviderAdjustment(npi, fiscal, "FB", f"FB{self.trace + 1:08d}", forwarded))
        return plbs
