"""The sample-data generator, checked from the written bytes: the tokenizer and pyx12 read the
files back, independently of the generator's own objects."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from claimsync_console.domain import Claim, ClaimPayment, ClaimStatus
from claimsync_console.engine.samplegen import generate, main
from claimsync_console.x12.document import read_document
from claimsync_console.x12.findings import Severity
from claimsync_console.x12.tokenizer import tokenize
from tests.pyx12_support import pyx12_problems

ZERO = Decimal("0.00")
REPO_SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


@dataclass
class Clp:
    pcn: str
    status: str
    charge: Decimal
    paid: Decimal
    ccn: str
    file: str
    adjusted: Decimal = ZERO  # claim-level and line-level CAS
    reasons: set[str] = field(default_factory=set)
    lines: list[list[Decimal]] = field(default_factory=list)  # [charge, paid, CAS total]


@dataclass
class Remit:
    path: str
    isa: str
    bpr02: Decimal
    plb: Decimal
    claims: list[Clp]


def read_835(root: Path, relative: str) -> Remit:
    """Only the tokenizer: BPR, CLP, SVC, CAS and PLB amounts, nothing from the generator."""
    raw = (root / relative).read_bytes()
    remit = Remit(relative, raw.decode("ascii").split("\n", 1)[0], ZERO, ZERO, [])
    claim: Clp | None = None
    in_line = False
    for seg in tokenize(raw):
        if seg.id == "BPR":
            remit.bpr02 = Decimal(seg.get(2))
        elif seg.id == "CLP":
            claim = Clp(seg.get(1), seg.get(2), Decimal(seg.get(3)), Decimal(seg.get(4)),
                        seg.get(7), relative)  # fmt: skip
            remit.claims.append(claim)
            in_line = False
        elif seg.id == "SVC" and claim is not None:
            claim.lines.append([Decimal(seg.get(2)), Decimal(seg.get(3)), ZERO])
            in_line = True
        elif seg.id == "CAS" and claim is not None:
            for position in range(2, len(seg.elements), 3):
                value = Decimal(seg.get(position + 1))
                claim.adjusted += value
                claim.reasons.add(f"{seg.get(1)}-{seg.get(position)}")
                if in_line:
                    claim.lines[-1][2] += value
        elif seg.id == "PLB":
            remit.plb += sum((Decimal(seg.get(p)) for p in range(4, len(seg.elements), 2)), ZERO)
    return remit


def read_837(root: Path, relative: str) -> dict[str, tuple[Decimal, str, str]]:
    """CLM01 -> (CLM02, CLM05-3 frequency, REF*F8)."""
    claims: dict[str, tuple[Decimal, str, str]] = {}
    pcn = ""
    for seg in tokenize((root / relative).read_bytes()):
        if seg.id == "CLM":
            pcn = seg.get(1)
            claims[pcn] = (Decimal(seg.get(2)), seg.components(5)[2], "")
        elif seg.id == "REF" and seg.get(1) == "F8":
            billed, frequency, _ = claims[pcn]
            claims[pcn] = (billed, frequency, seg.get(2))
    return claims


def read_277(root: Path, relative: str) -> dict[str, str]:
    """Claim-level TRN02 -> STC01-1 category."""
    statuses: dict[str, str] = {}
    pcn, in_patient = "", False
    for seg in tokenize((root / relative).read_bytes()):
        if seg.id == "HL":
            in_patient = seg.get(3) == "PT"
        elif seg.id == "TRN" and in_patient:
            pcn = seg.get(2)
        elif seg.id == "STC" and in_patient:
            statuses[pcn] = seg.components(1)[0]
    return statuses


@dataclass
class Sample:
    root: Path
    manifest: dict[str, Any]
    remits: list[Remit]
    billed: dict[str, tuple[Decimal, str, str]]  # originals
    replacements: dict[str, tuple[Decimal, str, str]]
    acks: dict[str, str]

    def files(self, *kinds: str) -> list[dict[str, Any]]:
        return [f for f in self.manifest["files"] if f["kind"] in kinds]

    @property
    def clps(self) -> list[Clp]:
        return [c for r in self.remits for c in r.claims]


def load(root: Path) -> Sample:
    manifest = json.loads((root / "manifest.json").read_text())
    sample = Sample(root, manifest, [], {}, {}, {})
    for entry in sample.files("837P", "837I"):
        target = sample.replacements if entry["replacement"] else sample.billed
        target.update(read_837(root, entry["path"]))
    for entry in sample.files("277CA"):
        sample.acks.update(read_277(root, entry["path"]))
    sample.remits = [read_835(root, entry["path"]) for entry in sample.files("835")]
    return sample


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    root = tmp_path_factory.mktemp("small")
    generate(90, seed=7, out_dir=root, claims_per_file=12)
    return load(root)


@pytest.fixture(scope="module")
def thousand(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    root = tmp_path_factory.mktemp("thousand")
    generate(1000, seed=11, out_dir=root)
    return load(root)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- determinism ------------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    generate(60, seed=3, out_dir=tmp_path / "a")
    generate(60, seed=3, out_dir=tmp_path / "b")
    generate(60, seed=4, out_dir=tmp_path / "c")
    first = tree(tmp_path / "a")
    assert len(first) > 10
    assert first == tree(tmp_path / "b")
    other = tree(tmp_path / "c")
    assert other["manifest.json"] != first["manifest.json"]
    assert [other[k] for k in sorted(other) if k.endswith(".x12")] != [
        first[k] for k in sorted(first) if k.endswith(".x12")
    ]


def test_committed_sample_data_is_what_the_documented_command_makes(tmp_path: Path) -> None:
    if not (REPO_SAMPLE / "manifest.json").exists():
        pytest.fail("sample_data/ is missing: python -m claimsync_console.engine.samplegen "
                    "--claims 300 --seed 42 --out sample_data")  # fmt: skip
    generate(300, seed=42, out_dir=tmp_path)
    committed = {k: v for k, v in tree(REPO_SAMPLE).items() if k != "README.md"}
    assert committed == tree(tmp_path), (
        "the generator changed: regenerate sample_data/ with python -m "
        "claimsync_console.engine.samplegen --claims 300 --seed 42 --out sample_data"
    )


def test_a_second_run_leaves_no_stale_files(tmp_path: Path) -> None:
    generate(80, seed=1, out_dir=tmp_path)
    generate(10, seed=1, out_dir=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    assert {k for k in tree(tmp_path) if k.endswith(".x12")} == listed


def test_cli_writes_a_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--claims", "12", "--seed", "5", "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["seed"] == 5 and manifest["counts"]["claims_billed"] == 12
    assert "12 claims" in capsys.readouterr().out
    with pytest.raises(ValueError, match="at least 1"):
        generate(0, seed=1, out_dir=tmp_path)


# -- validity ---------------------------------------------------------------------------------


def test_every_file_passes_pyx12(small: Sample) -> None:
    """Files of one kind are validated as one stream of interchanges (pyx12 resets at each ISA),
    which loads each implementation-guide map once instead of once per file."""
    kinds = {f["kind"] for f in small.manifest["files"]}
    assert kinds == {"837P", "837I", "277CA", "835"}
    for kind in sorted(kinds):
        texts = [(small.root / f["path"]).read_text() for f in small.files(kind)]
        assert all(len(text.split("\n", 1)[0]) == 106 for text in texts)  # ISA with its '~'
        assert pyx12_problems("".join(texts)) == [], kind


def test_project_reader_finds_no_errors_and_the_manifest_counts(small: Sample) -> None:
    for entry in small.manifest["files"]:
        reader = read_document((small.root / entry["path"]).read_bytes(), entry["path"])
        objects = list(reader)
        bad = [f for f in reader.findings if f.severity in (Severity.ERROR, Severity.FATAL)]
        assert bad == [], entry["path"]
        if entry["kind"] == "835":
            paid = [o.paid for o in objects if isinstance(o, ClaimPayment)]
            assert len(paid) == entry["claim_payments"]
            assert str(sum(paid, ZERO)) == entry["paid_total"]
        elif entry["kind"] == "277CA":
            assert sum(isinstance(o, ClaimStatus) for o in objects) == entry["statuses"]
        else:
            assert sum(isinstance(o, Claim) for o in objects) == entry["claims"]


# -- balancing --------------------------------------------------------------------------------


def test_every_check_balances_and_matches_the_manifest(small: Sample) -> None:
    checks = {c["file"]: c for c in small.manifest["checks"]}
    assert len(checks) == len(small.remits) > 5
    for remit in small.remits:
        paid = sum((c.paid for c in remit.claims), ZERO)
        assert remit.bpr02 == paid - remit.plb, remit.path
        check = checks[remit.path]
        assert (check["paid_total"], check["plb_total"]) == (str(paid), str(remit.plb))
        assert Decimal(check["payment_amount"]) == remit.bpr02 >= 0
        assert check["claim_payments"] == len(remit.claims)
    totals = small.manifest["totals"]
    assert Decimal(totals["payment"]) == sum((r.bpr02 for r in small.remits), ZERO)
    assert Decimal(totals["paid"]) == sum((c.paid for c in small.clps), ZERO)


def test_every_claim_and_line_balances(thousand: Sample) -> None:
    for clp in thousand.clps:
        assert clp.charge - clp.paid == clp.adjusted, clp.pcn
        for charge, paid, adjusted in clp.lines:
            assert charge - paid == adjusted, clp.pcn
        if clp.lines:
            assert sum((line[0] for line in clp.lines), ZERO) == clp.charge


def test_some_checks_carry_provider_adjustments(thousand: Sample) -> None:
    reasons: set[str] = set()
    for entry in thousand.files("835"):
        for seg in tokenize((thousand.root / entry["path"]).read_bytes()):
            if seg.id == "PLB":
                reasons |= {seg.components(p)[0] for p in range(3, len(seg.elements), 2)}
    assert reasons == {"L6", "WO", "FB"}
    assert any(r.plb for r in thousand.remits)


# -- what was planted -------------------------------------------------------------------------


def test_reversals_cancel_an_earlier_payment_then_a_correction_follows(thousand: Sample) -> None:
    by_ccn: dict[str, list[tuple[int, Clp]]] = defaultdict(list)
    ordered = thousand.clps
    for position, clp in enumerate(ordered):
        by_ccn[clp.ccn].append((position, clp))
    reversals = [(i, c) for i, c in enumerate(ordered) if c.status == "22"]
    assert len(reversals) == thousand.manifest["counts"]["reversals"] > 5
    for position, reversal in reversals:
        (original_at, original), (at, _) = by_ccn[reversal.ccn]
        assert at == position and original_at < position
        assert original.file != reversal.file  # paid in an earlier check
        assert (reversal.pcn, reversal.charge, reversal.paid, reversal.adjusted) == (
            original.pcn, -original.charge, -original.paid, -original.adjusted,
        )  # fmt: skip
        correction = ordered[position + 1]
        assert correction.pcn == reversal.pcn and correction.ccn != reversal.ccn
        assert correction.file == reversal.file and correction.paid > original.paid
        billed, frequency, f8 = thousand.replacements[reversal.pcn]
        assert (billed, frequency, f8) == (original.charge, "7", original.ccn)
        assert thousand.acks[reversal.pcn] == "A2"


def test_problem_shares_are_sensible_and_match_the_manifest(thousand: Sample) -> None:
    manifest, clps = thousand.manifest, thousand.clps
    claims = manifest["counts"]["claims_billed"]
    assert claims == len(thousand.billed) == 1000
    rejected = {pcn for pcn, category in thousand.acks.items() if category in ("A7", "A8")}
    unknown = {c.pcn for c in clps if c.pcn not in thousand.billed}
    unusual = {c.pcn for c in clps if c.reasons & {"CO-B7", "OA-121"}}
    mismatch = {
        c.pcn
        for c in clps
        if c.pcn in thousand.billed and c.status != "22" and c.charge != thousand.billed[c.pcn][0]
    }
    problems = manifest["problem_pcns"]
    assert rejected == set(problems["rejected_277ca"])
    assert unknown == set(problems["unknown_pcn"])
    assert unusual == set(problems["unusual_carc"])
    assert mismatch == set(problems["amount_mismatch"])
    assert not rejected & {c.pcn for c in clps}  # a rejected claim never reaches an 835
    denied = sum(c.status == "4" for c in clps)
    shares = {
        "rejected": (len(rejected) / claims, 0.015, 0.05),
        "unknown": (len(unknown) / len(clps), 0.015, 0.05),
        "unusual": (len(unusual) / len(clps), 0.002, 0.025),
        "mismatch": (len(mismatch) / len(clps), 0.002, 0.025),
        "denied": (denied / len(clps), 0.06, 0.14),
        "secondary": (sum(c.status == "2" for c in clps) / len(clps), 0.01, 0.08),
        "reversal": (manifest["counts"]["reversals"] / claims, 0.008, 0.04),
    }
    for name, (share, low, high) in shares.items():
        assert low <= share <= high, f"{name}: {share:.3f} outside [{low}, {high}]"
    assert {"CO-45", "CO-253", "PR-1", "PR-2", "PR-3", "OA-23", "CO-97", "CO-16"} <= {
        r for c in clps for r in c.reasons
    }
    assert {"CO-50", "CO-29", "CO-197"} <= {r for c in clps if c.status == "4" for r in c.reasons}


def test_each_277ca_answers_exactly_its_837(small: Sample) -> None:
    for entry in small.files("837P", "837I"):
        assert entry["claims"] <= 12
        label = Path(entry["path"]).stem
        acked = read_277(small.root, f"277ca/277CA_{label}.x12")
        assert set(acked) == set(read_837(small.root, entry["path"]))
    counts = small.manifest["counts"]
    assert counts["claims_837P"] + counts["claims_837I"] == counts["claims_billed"] == 90
    assert any(f["path"].endswith("_0002.x12") for f in small.files("837P", "837I"))
