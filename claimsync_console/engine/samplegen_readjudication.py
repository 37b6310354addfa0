"""Re-adjudication for the sample-data generator: a reversal (CLP02 22) and its correction.

Both are derived from the original payment, so a reversal cancels it to the cent and the
correction still balances (CLP03 − CLP04 = Σ CAS) by construction.
"""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal
from typing import TypeVar

from claimsync_console.domain import CENT, ZERO, Adjustment, Amount, ClaimPayment
from claimsync_console.engine.samplegen_scenarios import between, pct

Money = TypeVar("Money", Adjustment, Amount)


def _negated(items: tuple[Money, ...]) -> tuple[Money, ...]:
    """Adjustments or amounts with every amount negated."""
    return tuple(replace(item, amount=-item.amount) for item in items)


def reverse(payment: ClaimPayment) -> ClaimPayment:
    """CLP02 22: every amount negated and the same CLP07, so it cancels the original exactly."""
    services = tuple(
        replace(s, charge=-s.charge, paid=-s.paid, adjustments=_negated(s.adjustments))
        for s in payment.services
    )
    services = tuple(replace(s, amounts=_negated(s.amounts)) for s in services)
    responsibility = -(payment.patient_responsibility or ZERO)
    return replace(
        payment,
        status_code="22",
        charge=-payment.charge,
        paid=-payment.paid,
        patient_responsibility=responsibility,
        adjustments=_negated(payment.adjustments),
        services=services,
        amounts=_negated(payment.amounts),
    )


def correct(rng: random.Random, payment: ClaimPayment, icn: str) -> ClaimPayment:
    """The re-adjudicated claim after the replacement 837: the payer moves part of the first
    CO-45 into payment, so the correction always pays more than the reversal takes back (a
    check holding both never goes negative). The payer issues a new CLP07 for it."""
    if payment.adjustments:
        moved, adjustments = _move_from_contractual(rng, payment.adjustments)
        services = payment.services
    else:
        services_list = list(payment.services)
        moved = ZERO
        for index, service in enumerate(services_list):
            moved, adjustments = _move_from_contractual(rng, service.adjustments)
            if moved:
                amounts = tuple(replace(a, amount=a.amount + moved) for a in service.amounts)
                services_list[index] = replace(
                    service, paid=service.paid + moved, adjustments=adjustments, amounts=amounts
                )
                break
        services, adjustments = tuple(services_list), payment.adjustments
    return replace(
        payment,
        paid=payment.paid + moved,
        payer_claim_control_number=icn,
        frequency_code="7",
        adjustments=adjustments,
        services=services,
        amounts=tuple(replace(a, amount=a.amount + moved) for a in payment.amounts),
    )


def _move_from_contractual(
    rng: random.Random, adjustments: tuple[Adjustment, ...]
) -> tuple[Decimal, tuple[Adjustment, ...]]:
    for index, adjustment in enumerate(adjustments):
        if adjustment.reason_code == "45" and adjustment.amount > CENT:
            moved = max(CENT, pct(adjustment.amount, between(rng, 10, 50)))
            changed = list(adjustments)
            changed[index] = replace(adjustment, amount=adjustment.amount - moved)
            return moved, tuple(changed)
    return ZERO, adjustments


def has_contractual(payment: ClaimPayment) -> bool:
    return any(a.reason_code == "45" and a.amount > CENT for a in payment.all_adjustments)
