"""When a posting that failed with a transient error is tried again.

Exponential backoff with *full jitter* (a uniform draw between a floor and the capped
exponential): when the ERP comes back after an outage, the rows that failed together must not
all come back in the same second, or they knock it over again. The ERP's own Retry-After wins
whenever it asks for longer than the draw, because a throttling ERP that is ignored tends to
lock the caller out.

The floor is small but never zero: a row whose next attempt equals "now" would be claimed again
by the same drain pass and burn its attempts in a tight loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Seconds are durations, not money, so floats are fine here."""

    base_seconds: float = 2.0
    cap_seconds: float = 900.0
    floor_seconds: float = 0.5
    max_retry_after_seconds: float = 86_400.0  # a Retry-After beyond a day is a broken header

    def __post_init__(self) -> None:
        if not 0 < self.floor_seconds <= self.base_seconds <= self.cap_seconds:
            raise ValueError("need 0 < floor_seconds <= base_seconds <= cap_seconds")

    def ceiling(self, attempt: int) -> float:
        """The largest backoff for the ``attempt``-th failure (1-based), before jitter."""
        exponent = min(max(attempt, 1) - 1, 60)  # 2**60 * base is far past any cap
        return min(self.cap_seconds, self.base_seconds * 2.0**exponent)

    def delay(
        self,
        attempt: int,
        *,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> timedelta:
        """How long to wait after the ``attempt``-th failure; ``rng`` makes tests repeatable."""
        upper = max(self.floor_seconds, self.ceiling(attempt))
        draw = (rng or _RNG).uniform(self.floor_seconds, upper)
        if retry_after is not None and retry_after > draw:
            draw = min(retry_after, self.max_retry_after_seconds)
        return timedelta(seconds=draw)


_RNG = random.Random()
