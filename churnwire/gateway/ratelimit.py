"""Per-key rate limiting in process: a token bucket per API key, no Redis round trip.

Each bucket holds at most one second of requests (``rate`` tokens) and refills continuously.
"""

from __future__ import annotations

import math
import time


class RateLimiter:
    """Token buckets keyed by API key hash."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._capacity = max(rate, 1.0)
        # key hash -> (tokens, monotonic time of the last update)
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key_hash: str, now: float | None = None) -> float:
        """Take one token; return 0 when allowed, else the seconds until a token is free."""
        now = time.monotonic() if now is None else now
        tokens, updated = self._buckets.get(key_hash, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - updated) * self._rate)
        if tokens >= 1.0:
            self._buckets[key_hash] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key_hash] = (tokens, now)
        return (1.0 - tokens) / self._rate


def retry_after_header(wait_seconds: float) -> str:
    """The ``Retry-After`` value (whole seconds, at least 1) for a wait."""
    return str(max(1, math.ceil(wait_seconds)))
