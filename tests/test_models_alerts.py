"""Alert crossings: hysteresis, bands, the stable variant split and the message shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from churnwire.models.alerts import AlertPolicy, Crossing
from churnwire.models.scoring import drives_alerts

POLICY = AlertPolicy(threshold=0.8, hysteresis=0.05)


def test_a_score_hovering_at_the_threshold_crosses_once() -> None:
    state = "below"
    moves = 0
    for probability in (0.79, 0.80, 0.78, 0.81, 0.76, 0.80, 0.799):
        new_state = POLICY.next_state(state, probability)
        moves += new_state != state
        state = new_state
    assert moves == 1 and state == "above"


def test_recovery_needs_the_hysteresis_band() -> None:
    assert POLICY.next_state("above", 0.751) == "above"
    assert POLICY.next_state("above", 0.749) == "below"
    assert POLICY.next_state("below", 0.8) == "above"


@pytest.mark.parametrize(("probability", "band"), [(0.1, "low"), (0.4, "medium"), (0.8, "high")])
def test_risk_bands(probability: float, band: str) -> None:
    assert POLICY.risk_band(probability) == band


def test_the_variant_split_is_stable_and_follows_the_share() -> None:
    customers = [f"c-{n}" for n in range(4000)]
    assert all(drives_alerts(c, 0.0) == "champion" for c in customers)
    assert all(drives_alerts(c, 1.0) == "challenger" for c in customers)
    quarter = [drives_alerts(c, 0.25) for c in customers]
    assert quarter == [drives_alerts(c, 0.25) for c in customers]
    assert 0.22 < quarter.count("challenger") / len(customers) < 0.28
    # Growing the share only moves customers from the champion to the challenger.
    assert all(drives_alerts(c, 0.5) == "challenger"
               for c, variant in zip(customers, quarter, strict=True) if variant == "challenger")


def test_the_alert_message_carries_the_contract_fields() -> None:
    crossing = Crossing(
        customer_id="cdnow-7", number=3, type="churn_risk", probability=0.912345678,
        previous_probability=0.5, model_version="v1", variant="champion",
        event_time=875_577_600_000_000, top_features=[],
    )
    message = crossing.message(POLICY, datetime(2026, 12, 4, tzinfo=UTC))
    assert message["alert_id"] == "cdnow-7:3"
    assert message["risk_band"] == "high" and message["threshold"] == 0.8
    assert message["probability"] == 0.912346
    assert message["event_time"] == "1997-09-30T00:00:00+00:00"
    assert set(message) == {
        "alert_id", "type", "customer_id", "probability", "previous_probability", "threshold",
        "risk_band", "model_version", "variant", "top_features", "event_time", "published_at",
    }
