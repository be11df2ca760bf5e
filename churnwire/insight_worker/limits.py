"""Limits around the model: per-minute rate, daily token and cost budget, circuit breaker.

The budget lives in Redis (one hash per UTC day), so restarts and several workers share it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

BUDGET_KEY_PREFIX = "cw:insights:budget:"
BUDGET_KEEP_SECONDS = 3 * 86_400


class RateLimiter:
    """At most ``per_minute`` model calls in any 60 seconds; callers wait for a slot."""

    def __init__(self, per_minute: int) -> None:
        self._interval = 60.0 / per_minute
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> float:
        """Wait for the next slot; return the seconds waited."""
        async with self._lock:
            now = time.monotonic()
            delay = max(0.0, self._next - now)
            self._next = max(now, self._next) + self._interval
        if delay:
            await asyncio.sleep(delay)
        return delay


@dataclass
class CircuitBreaker:
    """Opens after ``failures`` model failures in a row; one trial call after ``cooldown`` s."""

    failures: int
    cooldown: float
    _consecutive: int = 0
    _opened_at: float | None = None

    def allow(self) -> bool:
        """Whether a model call may be tried now."""
        if self._opened_at is None:
            return True
        return time.monotonic() - self._opened_at >= self.cooldown

    @property
    def is_open(self) -> bool:
        """Whether calls are being refused now."""
        return not self.allow()

    def success(self) -> None:
        """A call worked: close the breaker."""
        if self._opened_at is not None:
            log.info("model circuit breaker closed")
        self._consecutive, self._opened_at = 0, None

    def failure(self) -> None:
        """A call failed: count it, open (or re-open after a failed trial) at the limit."""
        self._consecutive += 1
        if self._consecutive >= self.failures:
            if self._opened_at is None:
                log.warning("model circuit breaker open after %d failures; rules for %.0f s",
                            self._consecutive, self.cooldown)
            self._opened_at = time.monotonic()


class TokenBudget(Protocol):
    """What the generator needs of a budget."""

    async def remaining_tokens(self) -> int:
        """Tokens left today."""

    async def allows_call(self) -> bool:
        """Whether a model call may be made."""

    async def spend(self, tokens: int, cost: float) -> None:
        """Record what a call used."""


class LocalBudget:
    """A budget kept in this process only (``churnwire insights eval`` and benchmarks)."""

    def __init__(self, daily_tokens: int, daily_cost: float) -> None:
        self.daily_tokens, self.daily_cost = daily_tokens, daily_cost
        self.tokens, self.cost = 0, 0.0

    async def remaining_tokens(self) -> int:
        """Tokens left."""
        return max(0, self.daily_tokens - self.tokens)

    async def allows_call(self) -> bool:
        """Whether anything is left of both budgets."""
        return self.tokens < self.daily_tokens and self.cost < self.daily_cost

    async def spend(self, tokens: int, cost: float) -> None:
        """Record what a call used."""
        self.tokens += tokens
        self.cost += cost


class Budget:
    """Today's (UTC) token and dollar budget, spent by every worker through Redis."""

    def __init__(self, client: aioredis.Redis, daily_tokens: int, daily_cost: float) -> None:
        self._client = client
        self.daily_tokens = daily_tokens
        self.daily_cost = daily_cost

    @staticmethod
    def _key() -> str:
        return BUDGET_KEY_PREFIX + datetime.now(UTC).strftime("%Y-%m-%d")

    async def spent(self) -> tuple[int, float]:
        """Tokens and dollars spent today."""
        tokens, cost = await self._client.hmget(self._key(), ["tokens", "cost"])  # type: ignore[misc]
        return int(tokens or 0), float(cost or 0.0)

    async def remaining_tokens(self) -> int:
        """Tokens left today (never negative)."""
        tokens, _ = await self.spent()
        return max(0, self.daily_tokens - tokens)

    async def allows_call(self) -> bool:
        """Whether anything is left of both budgets."""
        tokens, cost = await self.spent()
        return tokens < self.daily_tokens and cost < self.daily_cost

    async def spend(self, tokens: int, cost: float) -> None:
        """Record what a call used."""
        key = self._key()
        pipe = self._client.pipeline(transaction=True)
        pipe.hincrby(key, "tokens", tokens)
        pipe.hincrbyfloat(key, "cost", cost)
        pipe.expire(key, BUDGET_KEEP_SECONDS)
        await pipe.execute()
