"""The one definition of every per-customer feature, used by the stream and the offline builder.

Features are computed from a customer's order facts, web (clickstream) facts and profile,
evaluated at an ``as_of`` time (epoch microseconds). An order counts towards a window of N days
at ``as_of`` when ``as_of - N days < created_at <= as_of``; nothing after ``as_of`` is ever
seen, which makes the computation point-in-time correct wherever the facts come from. Web
events follow the same rule with their ``occurred_at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MICROS_PER_DAY = 86_400 * 1_000_000
WINDOWS_DAYS = (7, 30, 90, 180, 365)
WEB_WINDOWS_DAYS = (7, 30)

# Orders in these states never happened as far as the customer's behaviour is concerned.
NOT_COUNTED_STATUSES = frozenset({"cancelled", "canceled", "refunded", "failed"})

Kind = Literal["int", "float", "timestamp", "string", "bool"]


@dataclass(frozen=True)
class FeatureSpec:
    """A feature's name, storage kind and one-line meaning."""

    name: str
    kind: Kind
    description: str


@dataclass(frozen=True)
class OrderFact:
    """What the features need to know about one order."""

    order_id: str
    created_at: int  # epoch microseconds, the order's event time
    amount: float
    items: int
    status: str

    @property
    def counts(self) -> bool:
        """Whether the order contributes to the customer's features."""
        return self.status not in NOT_COUNTED_STATUSES


@dataclass(frozen=True)
class WebFact:
    """What the features need to know about one clickstream event."""

    event_id: str
    occurred_at: int  # epoch microseconds, the event's time
    type: str  # page_view, add_to_cart or session_start


@dataclass(frozen=True)
class CustomerProfile:
    """The customer's attributes from the ``customers`` table."""

    customer_id: str
    signup_at: int  # epoch microseconds
    segment: str | None = None
    country: str | None = None
    acquisition_channel: str | None = None
    marketing_opt_in: bool = False

    def exists_at(self, as_of: int) -> bool:
        """Whether the customer had signed up by ``as_of`` (and so has a feature row)."""
        return self.signup_at <= as_of


def _window_specs() -> list[FeatureSpec]:
    specs = []
    for days in WINDOWS_DAYS:
        specs.append(FeatureSpec(f"orders_{days}d", "int", f"orders in the last {days} days"))
        specs.append(FeatureSpec(f"spend_{days}d", "float", f"money spent in the last {days} days"))
    return specs


def _web_specs() -> list[FeatureSpec]:
    specs = []
    for days in WEB_WINDOWS_DAYS:
        specs.append(FeatureSpec(f"sessions_{days}d", "int", f"sessions started, last {days} days"))
        specs.append(FeatureSpec(f"page_views_{days}d", "int", f"pages viewed, last {days} days"))
        specs.append(
            FeatureSpec(f"add_to_cart_{days}d", "int", f"add-to-cart events, last {days} days")
        )
    return specs


FEATURES: tuple[FeatureSpec, ...] = (
    *_window_specs(),
    FeatureSpec("orders_lifetime", "int", "orders since the first one"),
    FeatureSpec("spend_lifetime", "float", "money spent since the first order"),
    FeatureSpec("items_lifetime", "int", "items bought since the first order"),
    FeatureSpec("avg_order_value", "float", "lifetime spend / lifetime orders (0 without orders)"),
    FeatureSpec("max_order_value", "float", "largest single order (0 without orders)"),
    FeatureSpec("first_order_at", "timestamp", "time of the first order (null without orders)"),
    FeatureSpec("last_order_at", "timestamp", "time of the latest order (null without orders)"),
    FeatureSpec("days_since_last_order", "float", "days from the latest order to as-of (null)"),
    FeatureSpec("days_since_first_order", "float", "days from the first order to as-of (null)"),
    FeatureSpec("tenure_days", "float", "days from sign-up to as-of"),
    FeatureSpec(
        "mean_days_between_orders", "float", "(last - first order) / (orders - 1); null below 2"
    ),
    FeatureSpec(
        "recency_ratio",
        "float",
        "days since last order / mean days between orders; >1 means overdue (null below 2)",
    ),
    FeatureSpec("spend_prev_30d", "float", "money spent 30 to 60 days before as-of"),
    FeatureSpec("spend_trend_30d", "float", "spend in the last 30 days minus the 30 before"),
    FeatureSpec("orders_prev_90d", "int", "orders 90 to 180 days before as-of"),
    FeatureSpec("orders_trend_90d", "int", "orders in the last 90 days minus the 90 before"),
    FeatureSpec("active_months_365d", "int", "distinct 30-day periods with an order, last year"),
    FeatureSpec("segment", "string", "customer segment from the customers table"),
    FeatureSpec("country", "string", "customer country from the customers table"),
    FeatureSpec("acquisition_channel", "string", "how the customer was acquired"),
    FeatureSpec("marketing_opt_in", "bool", "whether the customer accepts marketing"),
    *_web_specs(),
    FeatureSpec(
        "days_since_last_visit", "float", "days from the latest web event to as-of (null)"
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(spec.name for spec in FEATURES)
NUMERIC_FEATURES: tuple[str, ...] = tuple(
    spec.name for spec in FEATURES if spec.kind in ("int", "float")
)


def _days(micros: int) -> float:
    return micros / MICROS_PER_DAY


def _window_sums(
    facts: Sequence[OrderFact], as_of: int, start_days: int, end_days: int
) -> tuple[int, float]:
    """Order count and spend with ``as_of - end_days < created_at <= as_of - start_days``."""
    newest = as_of - start_days * MICROS_PER_DAY
    oldest = as_of - end_days * MICROS_PER_DAY
    selected = [f for f in facts if oldest < f.created_at <= newest]
    return len(selected), sum(f.amount for f in selected)


def _web_features(web: Iterable[WebFact], as_of: int) -> dict[str, Any]:
    """Session, page-view and add-to-cart counts per window, and days since the last visit."""
    seen = [event for event in web if event.occurred_at <= as_of]
    features: dict[str, Any] = {}
    for days in WEB_WINDOWS_DAYS:
        oldest = as_of - days * MICROS_PER_DAY
        recent = [event.type for event in seen if event.occurred_at > oldest]
        features[f"sessions_{days}d"] = recent.count("session_start")
        features[f"page_views_{days}d"] = recent.count("page_view")
        features[f"add_to_cart_{days}d"] = recent.count("add_to_cart")
    last_visit = max((event.occurred_at for event in seen), default=None)
    features["days_since_last_visit"] = (
        _days(as_of - last_visit) if last_visit is not None else None
    )
    return features


def compute_features(
    orders: Iterable[OrderFact],
    profile: CustomerProfile,
    as_of: int,
    web: Iterable[WebFact] = (),
) -> dict[str, Any]:
    """Every feature of one customer at ``as_of`` (epoch microseconds)."""
    facts = sorted(
        (o for o in orders if o.counts and o.created_at <= as_of),
        key=lambda o: (o.created_at, o.order_id),
    )
    features: dict[str, Any] = {}
    for days in WINDOWS_DAYS:
        count, spend = _window_sums(facts, as_of, 0, days)
        features[f"orders_{days}d"] = count
        features[f"spend_{days}d"] = spend

    count = len(facts)
    spend = sum(f.amount for f in facts)
    first = facts[0].created_at if facts else None
    last = facts[-1].created_at if facts else None
    features["orders_lifetime"] = count
    features["spend_lifetime"] = spend
    features["items_lifetime"] = sum(f.items for f in facts)
    features["avg_order_value"] = spend / count if count else 0.0
    features["max_order_value"] = max((f.amount for f in facts), default=0.0)
    features["first_order_at"] = first
    features["last_order_at"] = last
    features["days_since_last_order"] = _days(as_of - last) if last is not None else None
    features["days_since_first_order"] = _days(as_of - first) if first is not None else None
    features["tenure_days"] = _days(as_of - profile.signup_at)

    gap = None
    if count >= 2 and first is not None and last is not None:
        gap = _days(last - first) / (count - 1)
    features["mean_days_between_orders"] = gap
    since_last = features["days_since_last_order"]
    features["recency_ratio"] = since_last / gap if gap and since_last is not None else None

    _, spend_prev = _window_sums(facts, as_of, 30, 60)
    features["spend_prev_30d"] = spend_prev
    features["spend_trend_30d"] = features["spend_30d"] - spend_prev
    orders_prev, _ = _window_sums(facts, as_of, 90, 180)
    features["orders_prev_90d"] = orders_prev
    features["orders_trend_90d"] = features["orders_90d"] - orders_prev
    features["active_months_365d"] = len(
        {(as_of - f.created_at) // (30 * MICROS_PER_DAY) for f in facts
         if f.created_at > as_of - 365 * MICROS_PER_DAY}
    )

    features["segment"] = profile.segment
    features["country"] = profile.country
    features["acquisition_channel"] = profile.acquisition_channel
    features["marketing_opt_in"] = profile.marketing_opt_in
    features.update(_web_features(web, as_of))
    return features
