"""Customer lookups: one pipelined Redis round trip for one customer or a whole batch.

For each customer the pipeline reads the profile, orders, web and score hashes; one ``GET``
of the watermark is added per request. Features are then computed by the one feature
definition at the watermark (``CHURNWIRE_CLOCK=event``) or at the wall clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from churnwire.state.features import FEATURES, compute_features
from churnwire.state.layout import (
    WATERMARK,
    decode_orders,
    decode_profile,
    decode_web,
    orders_key,
    profile_key,
    score_key,
    web_key,
)
from churnwire.timeutil import from_micros

log = logging.getLogger(__name__)

_TIMESTAMP_FEATURES = frozenset(spec.name for spec in FEATURES if spec.kind == "timestamp")
_READS_PER_CUSTOMER = 4


def iso(micros: int) -> str:
    """An epoch-microsecond time as ISO-8601 UTC."""
    return from_micros(micros).isoformat()


def _churn(customer_id: str, stored: dict[str, str]) -> dict[str, Any] | None:
    """The ``churn`` object of a score hash, None when not scored (or unreadable)."""
    if "probability" not in stored:
        return None
    try:
        return {
            "probability": float(stored["probability"]),
            "model_version": stored.get("model_version", ""),
            "risk_band": stored.get("risk_band", ""),
            "scored_at": iso(int(stored["scored_at"])) if "scored_at" in stored else None,
        }
    except (ValueError, OverflowError):
        log.warning("unreadable score hash of customer %s; reported as not scored", customer_id)
        return None


def _features_json(features: dict[str, Any]) -> dict[str, Any]:
    for name in _TIMESTAMP_FEATURES:
        value = features[name]
        if value is not None:
            features[name] = iso(value)
    return features


class CustomerReader:
    """Reads customers' state from Redis and turns it into lookup answers."""

    def __init__(self, client: aioredis.Redis, clock: str) -> None:
        self._client = client
        self._clock = clock

    def _as_of(self, watermark: str | None) -> int:
        if self._clock == "event" and watermark:
            return int(watermark)
        # Wall clock, or event time before any order was seen.
        return time.time_ns() // 1000

    async def read(self, customer_ids: Sequence[str]) -> tuple[int, dict[str, dict[str, Any]]]:
        """The as-of time and the answer of every known customer among ``customer_ids``."""
        pipe = self._client.pipeline(transaction=False)
        for customer_id in customer_ids:
            pipe.hgetall(profile_key(customer_id))
            pipe.hgetall(orders_key(customer_id))
            pipe.hgetall(web_key(customer_id))
            pipe.hgetall(score_key(customer_id))
        pipe.get(WATERMARK)
        replies = await pipe.execute()
        as_of = self._as_of(replies[-1])
        as_of_text = iso(as_of)
        found = {}
        for index, customer_id in enumerate(customer_ids):
            profile_hash, orders_hash, web_hash, score_hash = replies[
                index * _READS_PER_CUSTOMER:(index + 1) * _READS_PER_CUSTOMER
            ]
            profile = decode_profile(customer_id, profile_hash)
            if profile is None:
                continue
            features = compute_features(
                decode_orders(orders_hash), profile, as_of, decode_web(web_hash)
            )
            found[customer_id] = {
                "customer_id": customer_id,
                "as_of": as_of_text,
                "features": _features_json(features),
                "churn": _churn(customer_id, score_hash),
            }
        return as_of, found
