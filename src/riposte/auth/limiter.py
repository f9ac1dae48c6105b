"""Per-key request limits, counted in this process: a token bucket for requests per minute and
a count of requests in flight. Excess is refused at once (429), never queued."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from riposte.auth.settings import LimitSettings
from riposte.errors import RateLimitError


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RequestLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._in_flight: dict[str, int] = {}

    def acquire(self, key: str, limits: LimitSettings) -> None:
        """Count one request in, or raise RateLimitError. Pair every success with `release`."""
        if limits.max_concurrent_requests is not None and \
                self._in_flight.get(key, 0) >= limits.max_concurrent_requests:
            raise RateLimitError(
                f"Too many concurrent requests for this key (limit {limits.max_concurrent_requests}).", retry_after=1
            )
        if limits.requests_per_minute is not None:
            self._take_token(key, limits.requests_per_minute)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def release(self, key: str) -> None:
        remaining = self._in_flight.get(key, 0) - 1
        if remaining > 0:
            self._in_flight[key] = remaining
        else:
            self._in_flight.pop(key, None)

    def _take_token(self, key: str, per_minute: int) -> None:
        now = self._clock()
        rate = per_minute / 60.0
        bucket = self._buckets.setdefault(key, _Bucket(tokens=float(per_minute), updated=now))
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            retry_after = max(1, math.ceil((1.0 - bucket.tokens) / rate))
            raise RateLimitError(f"Rate limit of {per_minute} requests per minute reached for this key.",
                                 retry_after=retry_after)
        bucket.tokens -= 1.0
