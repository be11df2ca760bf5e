"""Threshold crossings with hysteresis, and the alert messages they produce.

A customer is ``above`` once their probability reaches the threshold and stays there until it
falls below ``threshold - hysteresis``; only the two moves between the states are alerts, so a
score hovering at the threshold never flaps. The state and a crossing counter live in Redis
(``alert_state_key``); the counter makes the alert id, the same whenever a message is re-sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

AlertState = Literal["above", "below"]
AlertType = Literal["churn_risk", "recovered"]


@dataclass(frozen=True)
class AlertPolicy:
    """When a probability is a crossing, and which risk band it falls in."""

    threshold: float
    hysteresis: float

    def next_state(self, state: AlertState, probability: float) -> AlertState:
        """The alert state after a new probability."""
        if state == "below" and probability >= self.threshold:
            return "above"
        if state == "above" and probability < self.threshold - self.hysteresis:
            return "below"
        return state

    def risk_band(self, probability: float) -> str:
        """``high`` at or above the threshold, ``medium`` from half of it, else ``low``."""
        if probability >= self.threshold:
            return "high"
        if probability >= self.threshold / 2:
            return "medium"
        return "low"


@dataclass(frozen=True)
class Crossing:
    """One move between alert states, ready to become a ``churn-alerts`` message."""

    customer_id: str
    number: int  # the customer's crossing count after this one
    type: AlertType
    probability: float
    previous_probability: float | None
    model_version: str
    variant: str
    event_time: int  # epoch microseconds: the as-of time of the scored features
    top_features: list[dict[str, Any]]

    @property
    def alert_id(self) -> str:
        """Stable id of the crossing: a re-sent message carries the same one."""
        return f"{self.customer_id}:{self.number}"

    def message(self, policy: AlertPolicy, published_at: datetime) -> dict[str, Any]:
        """The JSON document of the alert (see docs/alerts.md)."""
        return {
            "alert_id": self.alert_id,
            "type": self.type,
            "customer_id": self.customer_id,
            "probability": round(self.probability, 6),
            "previous_probability": (
                None if self.previous_probability is None
                else round(self.previous_probability, 6)
            ),
            "threshold": policy.threshold,
            "risk_band": policy.risk_band(self.probability),
            "model_version": self.model_version,
            "variant": self.variant,
            "top_features": self.top_features,
            "event_time": datetime.fromtimestamp(self.event_time / 1e6, UTC).isoformat(),
            "published_at": published_at.isoformat(timespec="milliseconds"),
        }


def encode_alert(message: dict[str, Any]) -> str:
    """The stored and published form of an alert message."""
    return json.dumps(message, separators=(",", ":"), sort_keys=True)
