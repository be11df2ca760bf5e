"""Insight documents as the gateway answers them: the stored fields clients may rely on."""

from __future__ import annotations

from typing import Any

# Internal bookkeeping (publication flag, cache key) stays out of the answer.
PUBLIC_FIELDS = (
    "alert_id", "customer_id", "summary", "risk_drivers", "actions", "passage_ids", "generator",
    "fallback_reason", "cached_from", "prompt_version", "model", "tokens", "cost",
    "latency_seconds", "probability", "risk_band", "event_time", "created_at",
)


def public_insight(document: dict[str, Any]) -> dict[str, Any]:
    """The fields of a stored insight that the API publishes."""
    return {name: document.get(name) for name in PUBLIC_FIELDS}
