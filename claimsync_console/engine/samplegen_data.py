"""Reference tables for the sample-data generator: payers, facilities, price lists, CARCs.

Everything here is fake: payer ids start with 'SMP', NPIs carry a valid check digit but belong to
no one, and names come from short lists of common ones. Prices are integer cents so that no float
ever touches money. The generator draws from these tables in a fixed order, so changing a table
changes the committed sample_data/.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from claimsync_console.x12.writer import Address

BASE_DATE = date(2026, 1, 5)
# Real CARCs that a normal rules file is unlikely to map: B7 "provider not certified for this
# procedure on this date" and 121 "indemnification adjustment". (CO-999 would be invalid.)
UNUSUAL_CARCS = (("CO", "B7"), ("OA", "121"))
# SBR09 'CI' (commercial) and 'BL' (Blue Cross) are not CLP06 codes; payers answer with '12' (PPO)
CLP06_FOR_SBR09 = {"CI": "12", "BL": "12"}


@dataclass(frozen=True, slots=True)
class PayerProfile:
    key: str
    name: str
    payer_id: str
    filing_indicator: str
    allowed_pct: tuple[int, int]
    coinsurance_pct: int
    copay_cents: int
    deductible_cents: int
    sequestration: bool
    payment_method: str
    weight: int
    takes_secondary: bool
    originator_id: str
    address: Address


@dataclass(frozen=True, slots=True)
class Facility:
    code: str
    name: str
    npi: str
    tax_id: str
    address: Address
    institutional_pct: int
    weight: int
    doctors: tuple[tuple[str, str, str], ...]


def npi_with_check_digit(base: str) -> str:
    """A Luhn-valid NPI (prefix 80840), so engines that validate NPIs accept the sample data."""
    digits = [int(d) for d in "80840" + base]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if position % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return base + str((10 - total % 10) % 10)


# fmt: off
PAYERS = (
    PayerProfile("MCR", "MEDICARE AB SAMPLE MAC", "SMPMB", "MB", (45, 60), 20, 0, 25700,
                 True, "ACH", 30, False, "1000000001",
                 Address("PO BOX 1001", "INDIANAPOLIS", "IN", "462060001")),
    PayerProfile("MCD", "STATE MEDICAID SAMPLE", "SMPMD", "MC", (35, 50), 0, 300, 0,
                 False, "ACH", 15, True, "1000000002",
                 Address("PO BOX 2002", "SPRINGFIELD", "IL", "627940002")),
    PayerProfile("AET", "ACME HEALTH INSURANCE", "SMPAE", "CI", (60, 80), 10, 2500, 50000,
                 False, "CHK", 20, False, "1000000003",
                 Address("PO BOX 3003", "HARTFORD", "CT", "061560003")),
    PayerProfile("BCB", "BLUE SAMPLE CROSS SHIELD", "SMPBC", "BL", (55, 75), 20, 3000, 40000,
                 False, "ACH", 20, True, "1000000004",
                 Address("PO BOX 4004", "CHICAGO", "IL", "606800004")),
    PayerProfile("UHC", "UNITED SAMPLE HEALTH PLAN", "SMPUH", "CI", (58, 78), 20, 2000, 30000,
                 False, "ACH", 15, False, "1000000005",
                 Address("PO BOX 5005", "ATLANTA", "GA", "303480005")),
)

FACILITIES = (
    Facility("NMC", "NORTHSIDE MEDICAL CENTER", npi_with_check_digit("123456789"), "361111111",
             Address("100 HOSPITAL DRIVE", "SPRINGFIELD", "IL", "627010100"), 75, 35,
             (("HART", "LENA", npi_with_check_digit("156789012")),
              ("OKAFOR", "DAVID", npi_with_check_digit("156789013")))),
    Facility("LCH", "LAKESIDE COMMUNITY HOSPITAL", npi_with_check_digit("123456790"), "362222222",
             Address("2 LAKE SHORE ROAD", "PEORIA", "IL", "616020002"), 85, 20,
             (("MORENO", "ANA", npi_with_check_digit("156789014")),)),
    Facility("RPG", "RIVERSIDE PHYSICIAN GROUP", npi_with_check_digit("123456791"), "363333333",
             Address("30 RIVER STREET", "DECATUR", "IL", "625230030"), 0, 30,
             (("CHEN", "WEI", npi_with_check_digit("156789015")),
              ("BAKER", "SUSAN", npi_with_check_digit("156789016")))),
    Facility("HOC", "HILLCREST ORTHOPEDIC CLINIC", npi_with_check_digit("123456792"), "364444444",
             Address("4 HILLCREST AVENUE", "URBANA", "IL", "618010004"), 0, 15,
             (("NOVAK", "PETER", npi_with_check_digit("156789017")),)),
)

# (code, charge in cents, modifier options, copay applies)
PROFESSIONAL = (
    ("99213", 15000, ("",), True), ("99214", 22500, ("", "25"), True),
    ("99203", 21000, ("",), True), ("99204", 32000, ("",), True),
    ("36415", 2500, ("",), False), ("80053", 9500, ("",), False),
    ("85025", 4500, ("",), False), ("71046", 18000, ("", "26"), False),
    ("93000", 8500, ("",), False), ("20610", 27500, ("RT", "LT"), False),
    ("73721", 140000, ("RT", "LT"), False), ("97110", 12000, ("GP",), False),
    ("29881", 480000, ("RT", "LT"), False), ("12001", 31000, ("",), False),
)
# (revenue code, HCPCS or '', charge in cents)
OUTPATIENT = (
    ("0450", "99284", 180000), ("0300", "80053", 18000), ("0305", "85025", 9000),
    ("0320", "71046", 42000), ("0730", "93005", 26000), ("0636", "J1885", 4500),
    ("0250", "", 12000), ("0360", "29881", 980000), ("0510", "99213", 30000),
)
INPATIENT_EXTRAS = (("0250", "", 35000), ("0300", "", 48000), ("0272", "", 21000))
DIAGNOSES = ("E119", "I10", "J069", "M545", "R0789", "Z0000", "K219", "N390", "S83241A",
             "M1711", "J189", "I4891", "N179", "M25561")
FIRST = ("JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA",
         "DAVID", "ELIZABETH", "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA",
         "THOMAS", "SARAH", "CARLOS", "KAREN", "DANIEL", "NANCY", "MATTHEW", "LISA", "ANTHONY",
         "BETTY", "MARK", "SANDRA", "PAUL", "ASHLEY", "KEVIN", "EMILY")
LAST = ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS",
        "RODRIGUEZ", "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON",
        "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE",
        "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER", "YOUNG")
STREETS = ("OAK", "MAPLE", "CEDAR", "ELM", "PINE", "WALNUT", "ASH", "BIRCH")
TOWNS = (("SPRINGFIELD", "627040000"), ("PEORIA", "616040000"), ("DECATUR", "625210000"),
         ("URBANA", "618020000"), ("CHAMPAIGN", "618200000"))
LETTERS = "ACDEFGHJKMNPQRTUVWXY"
# fmt: on

OFFICE_VISITS = frozenset(p[0] for p in PROFESSIONAL if p[3])

# outcome -> (CARC of the one line it hits, LQ remarks); '' means the plan's denial reason
SPECIAL_LINE = {"partial": ("", ()), "co97": ("97", ("M15",)), "co16": ("16", ("N290",))}
