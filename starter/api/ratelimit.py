"""Per-caller request rates: a token bucket for each role and `sub`, in this process (docs/api.md).

A caller may send `burst` requests at once and `rate` a second after that; one more is answered 429 with
the seconds until the bucket holds a request again. Several API processes each keep their own buckets, so
a deployment's rate is the setting times its processes. A bucket left alone long enough to have filled up
again is the same as a new one, so those are forgotten once there are many callers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_CALLERS = 100_000
"""Buckets kept before full ones are forgotten: bounds the memory a stream of new subs may take."""


@dataclass
class _Bucket:
    level: float
    at: float


class RateLimiter:
    """`rate` requests a second (0: no limit), `burst` at once, per key."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def wait(self, key: tuple[str, str]) -> float:
        """0 if `key` may send a request now (and counts it), else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_CALLERS:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(level=self.burst, at=now)
        bucket.level = min(self.burst, bucket.level + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.level >= 1:
            bucket.level -= 1
            return 0.0
        return (1 - bucket.level) / self.rate

    def _forget_full(self, now: float) -> None:
        refill = self.burst / self.rate
        self._buckets = {key: b for key, b in self._buckets.items() if now - b.at < refill}
