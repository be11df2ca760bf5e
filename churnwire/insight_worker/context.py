"""What the insight worker knows about the customer behind an alert, minus direct identifiers.

Features and score come from Redis (the same reader as the gateway), recent orders from
PostgreSQL through asyncpg, drivers from the alert. Nothing that identifies a person (email,
name, customer id) enters the context, and free-text values written by customers pass only
when they look like the short codes they are meant to be: customer data is data, not
instructions.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from churnwire.gateway.lookup import CustomerReader
from churnwire.state.features import FEATURES

log = logging.getLogger(__name__)

RECENT_ORDERS = 5
# Features shown to the model besides the alert's drivers: the ones playbooks speak about.
CONTEXT_FEATURES = (
    "segment", "marketing_opt_in", "orders_lifetime", "spend_lifetime", "avg_order_value",
    "days_since_last_order", "tenure_days", "orders_90d", "spend_90d", "orders_trend_90d",
    "spend_trend_30d", "sessions_30d",
)
# Without the notes on nulls the definitions carry ("(null without orders)").
DESCRIPTIONS = {spec.name: re.sub(r"\s*\(null[^)]*\)", "", spec.description)
                for spec in FEATURES}
_CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,23}$")
UNRECOGNISED = "unrecognised"

_ORDERS_SQL = """
SELECT created_at, amount, items, category, status
FROM orders
WHERE customer_id = $1 AND created_at <= $2
ORDER BY created_at DESC
LIMIT $3
"""


def clean_code(value: Any) -> str | None:
    """A short categorical value (segment, country, category) or ``unrecognised``."""
    if value is None:
        return None
    text = str(value).strip().lower()
    return text if _CODE.match(text) else UNRECOGNISED


def _clean_number(value: Any) -> float | int | bool | None:
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return round(value, 2)
    return None


@dataclass(frozen=True)
class Driver:
    """One of the features that pushed the score up, as the alert lists it."""

    feature: str
    value: float | None
    contribution: float

    @property
    def description(self) -> str:
        """What the feature means, from the feature definition."""
        return DESCRIPTIONS.get(self.feature, self.feature.replace("_", " "))


@dataclass(frozen=True)
class InsightContext:
    """Everything an insight may be grounded in, for one alert."""

    alert_id: str
    customer_id: str
    probability: float
    risk_band: str
    threshold: float
    event_time: datetime
    drivers: list[Driver]
    facts: dict[str, Any] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)

    @property
    def drivers_key(self) -> str:
        """What the insight cache is keyed by: the top drivers' names and the risk band."""
        return "|".join([self.risk_band, *sorted(d.feature for d in self.drivers[:3])])

    def prompt_data(self) -> dict[str, Any]:
        """The customer as the model sees it: no identifiers, only cleaned values."""
        return {
            "churn_probability": round(self.probability, 2),
            "risk_band": self.risk_band,
            "top_drivers": [
                {"feature": d.feature, "meaning": d.description,
                 "value": None if d.value is None else round(d.value, 2),
                 "contribution": round(d.contribution, 3)}
                for d in self.drivers
            ],
            "customer": self.facts,
            "recent_orders": self.orders,
        }

    def retrieval_query(self) -> str:
        """The question put to the knowledge base."""
        drivers = "; ".join(d.description for d in self.drivers[:3])
        segment = self.facts.get("segment") or "unknown"
        consent = "opted in to marketing" if self.facts.get("marketing_opt_in") else (
            "no marketing consent")
        return (f"customer at {self.risk_band} churn risk, segment {segment}, {consent}; "
                f"drivers: {drivers}")


def parse_drivers(alert: dict[str, Any]) -> list[Driver]:
    """The alert's ``top_features`` as drivers (malformed entries are skipped)."""
    drivers = []
    for item in alert.get("top_features") or []:
        try:
            value = item.get("value")
            drivers.append(Driver(str(item["feature"]),
                                  None if value is None else float(value),
                                  float(item.get("contribution", 0.0))))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return [d for d in drivers if d.feature in DESCRIPTIONS]


class ContextGatherer:
    """Reads a customer's state from Redis and recent orders from PostgreSQL."""

    def __init__(self, redis_client: aioredis.Redis, pool: asyncpg.Pool, clock: str) -> None:
        self._reader = CustomerReader(redis_client, clock)
        self._pool = pool

    async def _facts(self, customer_id: str) -> dict[str, Any]:
        _, found = await self._reader.read([customer_id])
        features = found.get(customer_id, {}).get("features", {})
        facts: dict[str, Any] = {}
        for name in CONTEXT_FEATURES:
            value = features.get(name)
            facts[name] = clean_code(value) if name == "segment" else _clean_number(value)
        return facts

    async def _orders(self, customer_id: str, until: datetime) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(_ORDERS_SQL, customer_id, until, RECENT_ORDERS)
        return [
            {"date": row["created_at"].date().isoformat(), "amount": round(float(row["amount"]), 2),
             "items": row["items"], "category": clean_code(row["category"]),
             "status": clean_code(row["status"])}
            for row in rows
        ]

    async def gather(self, alert: dict[str, Any]) -> InsightContext:
        """The context of one ``churn_risk`` alert."""
        customer_id = str(alert["customer_id"])
        event_time = datetime.fromisoformat(str(alert["event_time"]))
        return InsightContext(
            alert_id=str(alert["alert_id"]),
            customer_id=customer_id,
            probability=float(alert["probability"]),
            risk_band=clean_code(alert.get("risk_band")) or "high",
            threshold=float(alert.get("threshold", 0.8)),
            event_time=event_time,
            drivers=parse_drivers(alert),
            facts=await self._facts(customer_id),
            orders=await self._orders(customer_id, event_time),
        )
