"""The matcher's pure half: facts about payments and claims, candidate scores, which version of
a claim a payment pays, the sanity checks, and the verdict. No I/O, so every rule is unit-tested
without a database; ``engine.matching`` fetches the facts and stores the verdicts.

Scores are integer points out of 100 so they compare exactly and store as integers:
CLP01 similarity up to 35 (difflib ratio), same member id 20, same patient name 10, service
dates 15 (overlap) / 10 (within 3 days) / 5 (within 14), billed amount equal to CLP03 15, same
payer 5.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from difflib import SequenceMatcher
from typing import Any

from claimsync_console.domain import ZERO
from claimsync_console.engine.workitems import PaymentRef

REVERSAL = "22"
DENIED = "4"
VOID = "8"
MAX_CANDIDATES = 5
# CARCs that, on a claim paid nothing, mean the payer denied it (rather than, say, a deductible
# that ate the whole allowance): no coverage, timely filing, medical necessity, authorisation,
# missing information, duplicate, benefit maximum, provider not certified.
DENIAL_CARCS = frozenset(
    {"16", "18", "26", "27", "29", "31", "50", "96", "109", "119", "167", "197", "198", "204",
     "242", "B7"}
)  # fmt: skip

Warning = dict[str, Any]
FamilyKey = tuple[str, str]  # (patient control number, normalised payer id)


@dataclass(frozen=True, slots=True)
class ClaimFacts:
    """One 837 claim version as the matcher sees it (names and ids only in memory)."""

    claim_id: int
    patient_control_number: str
    payer_id: str
    frequency_code: str
    replaces_ccn: str  # REF*F8: the payer's control number of the claim this one replaces
    billed_amount: Decimal
    date_from: date | None = None
    date_to: date | None = None
    member_ids: frozenset[str] = frozenset()
    names: frozenset[tuple[str, str]] = frozenset()

    @property
    def family(self) -> FamilyKey:
        return (self.patient_control_number, self.payer_id)


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """One CLP loop with its remittance's payer and trace."""

    claim_payment_id: int
    remittance_id: int
    patient_control_number: str
    status_code: str
    charge: Decimal
    paid: Decimal
    payer_claim_control_number: str
    payer_id: str
    payer_name: str = ""
    trace_number: str = ""
    payment_date: date | None = None
    date_from: date | None = None
    date_to: date | None = None
    member_ids: frozenset[str] = frozenset()
    names: frozenset[tuple[str, str]] = frozenset()

    @property
    def is_reversal(self) -> bool:
        return self.status_code == REVERSAL

    def ref(self) -> PaymentRef:
        return PaymentRef(
            self.claim_payment_id,
            self.remittance_id,
            self.patient_control_number,
            self.status_code,
            self.charge,
            self.paid,
            self.payer_id,
            self.payer_name,
            self.trace_number,
        )


def people(*parties: Mapping[str, Any] | None) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """Member ids and (last, first) names of the stored person JSON objects, upper-cased."""
    ids: set[str] = set()
    names: set[tuple[str, str]] = set()
    for party in parties:
        if not party:
            continue
        if party.get("member_id"):
            ids.add(str(party["member_id"]).strip().upper())
        if party.get("last_name"):
            last, first = str(party["last_name"]), str(party.get("first_name") or "")
            names.add((last.strip().upper(), first.strip().upper()))
    return frozenset(ids), frozenset(names)


def statement_dates(dates: Iterable[Mapping[str, Any]]) -> tuple[date | None, date | None]:
    """The claim's statement period from CLP-level DTM*232/233 (ISO strings in the store)."""
    found: dict[str, date] = {}
    for item in dates:
        value = item.get("value")
        if item.get("qualifier") in ("232", "233") and value:
            found[str(item["qualifier"])] = date.fromisoformat(str(value))
    start = found.get("232")
    return start, found.get("233", start)


# -- scores ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scored:
    claim: ClaimFacts
    score: int
    reasons: tuple[str, ...]

    def as_candidate(self) -> dict[str, Any]:
        """JSON for the work item: ids, amounts as strings, the reasons; no names."""
        claim = self.claim
        return {
            "claim_id": claim.claim_id,
            "patient_control_number": claim.patient_control_number,
            "payer_id": claim.payer_id,
            "billed_amount": str(claim.billed_amount),
            "service_date_from": claim.date_from.isoformat() if claim.date_from else None,
            "score": self.score,
            "reasons": list(self.reasons),
        }


def _date_points(payment: PaymentFacts, claim: ClaimFacts) -> tuple[int, str]:
    if payment.date_from is None or claim.date_from is None:
        return 0, ""
    p_to, c_to = payment.date_to or payment.date_from, claim.date_to or claim.date_from
    if payment.date_from <= c_to and claim.date_from <= p_to:
        return 15, "service dates overlap"
    gap = min(abs((payment.date_from - c_to).days), abs((claim.date_from - p_to).days))
    if gap <= 3:
        return 10, f"service dates {gap} days apart"
    return (5, f"service dates {gap} days apart") if gap <= 14 else (0, "")


def score_candidate(payment: PaymentFacts, claim: ClaimFacts) -> Scored:
    reasons: list[str] = []
    pcns = (payment.patient_control_number, claim.patient_control_number)
    points = 35 if pcns[0] == pcns[1] else round(SequenceMatcher(None, *pcns).ratio() * 35)
    reasons.append(f"patient control number {points}/35")
    if payment.member_ids & claim.member_ids:
        points += 20
        reasons.append("same member id")
    if payment.names & claim.names:
        points += 10
        reasons.append("same patient name")
    date_points, why = _date_points(payment, claim)
    if date_points:
        points += date_points
        reasons.append(why)
    if abs(payment.charge) == claim.billed_amount:
        points += 15
        reasons.append("billed amount equals CLP03")
    if payment.payer_id and payment.payer_id == claim.payer_id:
        points += 5
        reasons.append("same payer")
    return Scored(claim, points, tuple(reasons))


def ranked(scored: Iterable[Scored]) -> list[Scored]:
    return sorted(scored, key=lambda s: (-s.score, -s.claim.claim_id))


def unique_best(scored: Sequence[Scored]) -> Scored | None:
    """The single best candidate, or None when two or more share the top score."""
    order = ranked(scored)
    if not order or (len(order) > 1 and order[0].score == order[1].score):
        return None
    return order[0]


def top_candidates(scored: Iterable[Scored], limit: int = MAX_CANDIDATES) -> list[dict[str, Any]]:
    return [s.as_candidate() for s in ranked(scored)[:limit]]


# -- versions and sanity -------------------------------------------------------------------------


def pick_version(versions: Sequence[ClaimFacts], ccn: str) -> tuple[ClaimFacts, list[Warning]]:
    """Which version of one claim (same CLP01 and payer) a payment pays.

    A version whose REF*F8 equals the payment's CLP07 replaced (or voided) the claim the payer
    adjudicated under that CLP07, so the payment pays the newest live version before it.
    Otherwise the newest live (not void) version; if every version is void, the newest one,
    with a warning."""
    ordered = sorted(versions, key=lambda v: v.claim_id)
    live = [v for v in ordered if v.frequency_code != VOID]
    if ccn:
        replacing = [v for v in ordered if v.replaces_ccn == ccn]
        if replacing:
            earlier = [v for v in live if v.claim_id < replacing[0].claim_id]
            if earlier:
                return earlier[-1], []
    if live:
        return live[-1], []
    return ordered[-1], [{"code": "claim-voided", "message": "every version is void (CLM05-3 8)"}]


def sanity_warnings(payment: PaymentFacts, claim: ClaimFacts) -> list[Warning]:
    """Amount and date checks on a match: recorded, never blocking (see docs/decisions)."""
    warnings: list[Warning] = []
    if abs(payment.charge) != claim.billed_amount:
        warnings.append(
            {
                "code": "charge-mismatch",
                "message": "CLP03 differs from the billed amount (CLM02)",
                "billed": str(claim.billed_amount),
                "charged": str(abs(payment.charge)),
            }
        )
    points, _ = _date_points(payment, claim)
    if payment.date_from is not None and claim.date_from is not None and points < 15:
        warnings.append(
            {
                "code": "service-dates-differ",
                "message": "the payment's statement period does not overlap the claim's",
                "claim_from": claim.date_from.isoformat(),
                "paid_from": payment.date_from.isoformat(),
            }
        )
    return warnings


def denial_codes(
    status_code: str, paid: Decimal, adjustments: Iterable[tuple[str, str]]
) -> list[str] | None:
    """The group-CARC codes when the payment is a denial (CLP02 4, or nothing paid with a denial
    CARC outside PR), else None."""
    codes = sorted({f"{group}-{reason}" for group, reason in adjustments if group != "PR"})
    if status_code == DENIED:
        return codes
    denial = any(code.split("-", 1)[1] in DENIAL_CARCS for code in codes)
    return codes if paid == ZERO and denial and status_code != REVERSAL else None


# -- verdicts ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Decision:
    status: str  # matched | unmatched | ambiguous | reversal_linked | reversal_orphan
    claim_id: int | None = None
    method: str | None = None
    score: int | None = None
    reversed_payment_id: int | None = None
    warnings: list[Warning] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""


def _families(versions: Iterable[ClaimFacts]) -> dict[FamilyKey, list[ClaimFacts]]:
    grouped: dict[FamilyKey, list[ClaimFacts]] = defaultdict(list)
    for version in versions:
        grouped[version.family].append(version)
    return grouped


def decide_payment(
    payment: PaymentFacts,
    by_pcn: Mapping[str, Sequence[ClaimFacts]],
    by_ccn: Mapping[str, set[FamilyKey]],
) -> Decision:
    """The verdict for a non-reversal payment. ``by_pcn`` must hold every claim version of
    CLP01 and of the families ``by_ccn`` names for CLP07. An unmatched verdict carries no
    candidates: finding them takes queries, which the caller makes."""
    families = _families(by_pcn.get(payment.patient_control_number, ()))
    warnings: list[Warning] = []
    if payment.payer_id:
        chosen = {key: v for key, v in families.items() if key[1] == payment.payer_id}
    else:
        chosen = dict(families)
        if chosen:
            warnings.append({"code": "payer-not-identified", "message": "the 835 has no payer id"})
    method = "pcn_payer"
    if not chosen and payment.payer_claim_control_number:
        method = "payer_ccn"
        for pcn, payer in by_ccn.get(payment.payer_claim_control_number, set()):
            if payment.payer_id and payer != payment.payer_id:
                continue
            chosen.update(_families(v for v in by_pcn.get(pcn, ()) if v.payer_id == payer))
    if not chosen:
        return Decision("unmatched", reason="no claim with this patient control number and payer")
    picks = [pick_version(v, payment.payer_claim_control_number) for v in chosen.values()]
    scored = [score_candidate(payment, claim) for claim, _ in picks]
    best = scored[0] if len(scored) == 1 else unique_best(scored)
    if best is None:
        return Decision(
            "ambiguous",
            candidates=top_candidates(scored),
            reason=f"{len(scored)} claims match equally well",
        )
    extra = next(w for claim, w in picks if claim is best.claim)
    warnings += extra + sanity_warnings(payment, best.claim)
    return Decision("matched", best.claim.claim_id, method, best.score, warnings=warnings)


@dataclass(frozen=True, slots=True)
class OriginalFacts:
    """A payment a reversal may undo, with the claim its match found (if any)."""

    claim_payment_id: int
    payer_claim_control_number: str
    payer_id: str
    payment_date: date | None
    charge: Decimal
    paid: Decimal
    claim_id: int | None


def decide_reversal(
    reversal: PaymentFacts, originals: Iterable[OriginalFacts], reversed_ids: set[int]
) -> Decision:
    """Link a CLP02 22 to the payment it undoes, preferring an exact mirror, then the newest."""
    pool = [
        o
        for o in originals
        if o.payer_claim_control_number == reversal.payer_claim_control_number
        and o.claim_payment_id != reversal.claim_payment_id
        and o.claim_payment_id not in reversed_ids
        and (not reversal.payer_id or not o.payer_id or o.payer_id == reversal.payer_id)
        and not (
            reversal.payment_date and o.payment_date and o.payment_date > reversal.payment_date
        )
    ]
    if not reversal.payer_claim_control_number or not pool:
        return Decision("reversal_orphan", reason="reversal without original")
    exact = [o for o in pool if o.charge == -reversal.charge and o.paid == -reversal.paid]
    choice = max(exact or pool, key=lambda o: (o.payment_date or date.min, o.claim_payment_id))
    warnings: list[Warning] = []
    if not exact:
        warnings.append(
            {"code": "reversal-amounts-differ", "message": "the reversal does not mirror it"}
        )
    return Decision(
        "reversal_linked",
        claim_id=choice.claim_id,
        method="payer_ccn",
        reversed_payment_id=choice.claim_payment_id,
        warnings=warnings,
    )
