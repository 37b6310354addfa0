"""Fault injection for the sandbox ERP: what a real network ERP does on a bad day, on demand.

Faults are drawn per API request from a seeded RNG, so a test asking for ``drop_rate=1.0`` gets
a drop every time and a demo asking for 5% gets about 5%. Where each fault strikes is chosen
for what it teaches:

* ``latency``, ``error`` (503) and ``rate_limit`` (429 + Retry-After) strike *before* the ledger
  is touched: nothing was posted, a retry is simply a first attempt;
* ``timeout`` (the reply comes ``hang`` seconds late), ``drop`` (the connection closes with no
  reply) and ``malformed`` (200 with broken JSON) strike *after* the posting committed: the
  client cannot tell whether it worked, and only the idempotency key makes its retry safe.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

#: Fault kinds in the order they are drawn; also the names ``--faults`` accepts.
KINDS = ("error", "rate_limit", "timeout", "drop", "malformed")
BEFORE = ("error", "rate_limit")


class FaultPlanError(ValueError):
    """A fault plan field is unknown or out of range."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Rates are probabilities per API request (0..1); times are seconds."""

    latency: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0
    timeout_rate: float = 0.0
    hang: float = 30.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    fail_next: int = 0  # the next N API requests answer 503 whatever the rates say
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("error_rate", "rate_limit_rate", "timeout_rate", "drop_rate"):
            _check_rate(name, getattr(self, name))
        _check_rate("malformed_rate", self.malformed_rate)
        if self.total_rate > 1.0 + 1e-9:
            raise FaultPlanError(f"fault rates add up to {self.total_rate:.3f}, more than 1")
        for name in ("latency", "retry_after", "hang"):
            if getattr(self, name) < 0:
                raise FaultPlanError(f"{name} must not be negative")
        if self.fail_next < 0:
            raise FaultPlanError("fail_next must not be negative")

    @property
    def total_rate(self) -> float:
        return sum(getattr(self, f"{kind}_rate") for kind in KINDS)

    @classmethod
    def from_json(cls, data: Any) -> FaultPlan:
        """A plan from the control endpoint's JSON object; unknown fields are errors."""
        if not isinstance(data, dict):
            raise FaultPlanError("a fault plan is a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise FaultPlanError(f"unknown fault field(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            values[name] = _field_value(name, value)
        return cls(**values)

    @classmethod
    def spread(cls, rate: float, kinds: tuple[str, ...], **others: Any) -> FaultPlan:
        """``--fault-rate R --faults a,b``: R split evenly over the named kinds."""
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown or not kinds:
            raise FaultPlanError(f"fault kinds must be among {', '.join(KINDS)}")
        rates: dict[str, Any] = {f"{kind}_rate": rate / len(kinds) for kind in kinds}
        return cls(**rates, **others)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise FaultPlanError(f"{name} must be between 0 and 1, got {value}")


def _field_value(name: str, value: Any) -> Any:
    if name == "seed":
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise FaultPlanError("seed must be an integer or null")
    if name == "fail_next":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise FaultPlanError("fail_next must be an integer")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise FaultPlanError(f"{name} must be a number")


class FaultInjector:
    """Thread-safe: the plan can be swapped at run time while requests are being served."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._plan = plan or FaultPlan()
        self._rng = random.Random(self._plan.seed)
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def set_plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed)

    def draw(self) -> str:
        """The fault for one request ('' for none), counted."""
        with self._lock:
            plan = self._plan
            if plan.fail_next > 0:
                self._plan = replace(plan, fail_next=plan.fail_next - 1)
                kind = "error"
            else:
                kind = self._pick(plan)
            if kind:
                self.counts[kind] += 1
            return kind

    def _pick(self, plan: FaultPlan) -> str:
        if plan.total_rate <= 0.0:
            return ""
        roll = self._rng.random()
        edge = 0.0
        for kind in KINDS:
            edge += getattr(plan, f"{kind}_rate")
            if roll < edge:
                return kind
        return ""
