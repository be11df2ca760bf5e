"""The feature definition: windows, boundaries, nulls and what does not count."""

from __future__ import annotations

import pytest

from churnwire.state.features import (
    FEATURE_NAMES,
    MICROS_PER_DAY,
    CustomerProfile,
    OrderFact,
    WebFact,
    compute_features,
)

DAY = MICROS_PER_DAY
AS_OF = 1_000 * DAY
PROFILE = CustomerProfile("c", signup_at=AS_OF - 400 * DAY, segment="vip")


def order(days_ago: float, amount: float, status: str = "completed", oid: str = "") -> OrderFact:
    return OrderFact(oid or f"o{days_ago}", int(AS_OF - days_ago * DAY), amount, 1, status)


def test_windows_include_their_far_edge_exclusively_and_as_of_inclusively() -> None:
    orders = [order(0, 1.0), order(7, 2.0), order(6.999, 4.0), order(30, 8.0), order(365, 16.0)]
    features = compute_features(orders, PROFILE, AS_OF)
    assert features["orders_7d"] == 2 and features["spend_7d"] == 5.0
    assert features["orders_30d"] == 3 and features["spend_30d"] == 7.0
    assert features["orders_365d"] == 4
    assert features["orders_lifetime"] == 5 and features["spend_lifetime"] == 31.0


def test_nothing_after_as_of_is_seen() -> None:
    features = compute_features([order(-1, 100.0), order(10, 5.0)], PROFILE, AS_OF)
    assert features["orders_lifetime"] == 1
    assert features["last_order_at"] == AS_OF - 10 * DAY
    assert features["days_since_last_order"] == pytest.approx(10.0)


def test_cancelled_orders_do_not_count() -> None:
    features = compute_features([order(1, 50.0, "cancelled"), order(2, 5.0)], PROFILE, AS_OF)
    assert features["orders_lifetime"] == 1 and features["spend_lifetime"] == 5.0


def test_a_customer_without_orders_has_zeros_and_nulls() -> None:
    features = compute_features([], PROFILE, AS_OF)
    assert set(features) == set(FEATURE_NAMES)
    assert features["orders_lifetime"] == 0 and features["avg_order_value"] == 0.0
    assert features["last_order_at"] is None and features["days_since_last_order"] is None
    assert features["mean_days_between_orders"] is None
    assert features["tenure_days"] == pytest.approx(400.0)
    assert features["segment"] == "vip"


def test_cadence_trend_and_recency_ratio() -> None:
    orders = [order(100, 10.0), order(70, 10.0), order(40, 10.0), order(10, 30.0)]
    features = compute_features(orders, PROFILE, AS_OF)
    assert features["mean_days_between_orders"] == pytest.approx(30.0)
    assert features["recency_ratio"] == pytest.approx(10 / 30)
    assert features["spend_prev_30d"] == 10.0
    assert features["spend_trend_30d"] == 20.0
    assert features["orders_prev_90d"] == 1 and features["orders_trend_90d"] == 2
    assert features["avg_order_value"] == 15.0 and features["max_order_value"] == 30.0
    assert features["active_months_365d"] == 4


def web(days_ago: float, kind: str, eid: str = "") -> WebFact:
    return WebFact(eid or f"w{days_ago}{kind}", int(AS_OF - days_ago * DAY), kind)


def test_web_events_count_by_type_and_window() -> None:
    events = [web(0, "session_start"), web(1, "page_view"), web(1.5, "page_view"),
              web(7, "page_view"), web(8, "add_to_cart"), web(29.5, "session_start"),
              web(30, "session_start"),
              web(31, "page_view"), web(-1, "page_view")]
    features = compute_features([], PROFILE, AS_OF, events)
    assert features["sessions_7d"] == 1 and features["sessions_30d"] == 2
    assert features["page_views_7d"] == 2 and features["page_views_30d"] == 3  # 7d edge out
    assert features["add_to_cart_7d"] == 0 and features["add_to_cart_30d"] == 1
    assert features["days_since_last_visit"] == pytest.approx(0.0)


def test_without_web_events_counts_are_zero_and_last_visit_null() -> None:
    features = compute_features([order(3, 5.0)], PROFILE, AS_OF)
    assert features["sessions_30d"] == 0 and features["page_views_7d"] == 0
    assert features["days_since_last_visit"] is None
    later = compute_features([], PROFILE, AS_OF, [web(12.5, "page_view")])
    assert later["days_since_last_visit"] == pytest.approx(12.5)
