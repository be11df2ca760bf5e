"""Synthetic e-commerce customers and orders for load tests, reproducible for a seed.

The shop runs from 2023-01-01 to 2025-01-01 (UTC). Customers sign up at a growing pace and
belong to a segment that sets how often they buy, how much they spend, how strongly holidays
move them and how likely they are to churn. A churned customer stops buying at their churn
time. Order times follow weekly, yearly (December peak, Black Friday, January lull) and
time-of-day seasonality; order values are lognormal per category.

Exactly the requested number of orders is drawn: orders are allotted to customers in proportion
to their expected purchases over their active time, then placed in time within that window.

Ids depend only on the seed and a running number, so the same shop loads idempotently. A shop
drawn with the same seed but other sizes reuses those ids for different rows, and the rows
already present win; use a new seed for a differently sized shop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from churnwire.data.loading import (
    DEFAULT_CHUNK_ORDERS,
    CustomerRow,
    LoadReport,
    OrderRow,
    insert_in_event_order,
    log_report,
)

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SHOP_OPENS = datetime(2023, 1, 1, tzinfo=UTC)
SHOP_CLOSES = datetime(2025, 1, 1, tzinfo=UTC)  # every order is strictly before this
SHOP_DAYS = (SHOP_CLOSES - SHOP_OPENS).days
LAST_SIGNUP_DAYS_BEFORE_CLOSE = 30
SECONDS_PER_DAY = 86_400
SOURCE = "synthetic"


@dataclass(frozen=True)
class Segment:
    """A kind of customer: purchase rate, spend, holiday response and churn behaviour."""

    name: str
    share: float
    orders_per_year: float
    value_multiplier: float
    holiday_response: float
    churn_share: float
    mean_days_to_churn: float
    items_extra_mean: float


SEGMENTS = (
    Segment("new", 0.35, 2.5, 0.9, 1.0, 0.55, 75.0, 0.3),
    Segment("regular", 0.35, 6.0, 1.0, 1.0, 0.30, 220.0, 0.4),
    Segment("vip", 0.08, 16.0, 2.2, 0.8, 0.10, 400.0, 0.6),
    Segment("bargain-hunter", 0.22, 5.0, 0.55, 2.2, 0.40, 160.0, 0.9),
)


@dataclass(frozen=True)
class Category:
    """A product category and the lognormal distribution of its unit prices."""

    name: str
    share: float
    median_price: float
    price_sigma: float


CATEGORIES = (
    Category("electronics", 0.14, 150.0, 0.65),
    Category("fashion", 0.26, 42.0, 0.5),
    Category("home", 0.17, 55.0, 0.6),
    Category("beauty", 0.14, 24.0, 0.45),
    Category("books", 0.13, 16.0, 0.4),
    Category("sports", 0.16, 50.0, 0.55),
)

COUNTRIES = {
    "US": 0.36, "GB": 0.12, "DE": 0.11, "FR": 0.08, "CA": 0.07,
    "NL": 0.05, "ES": 0.05, "IT": 0.05, "AU": 0.06, "SE": 0.05,
}  # fmt: skip
CHANNELS = {
    "organic_search": 0.30, "paid_search": 0.20, "social": 0.17,
    "referral": 0.12, "email": 0.09, "affiliate": 0.12,
}  # fmt: skip

# Relative order intensity, Monday first, and by hour of the day (UTC).
WEEKDAY_INTENSITY = np.array([1.0, 0.95, 0.95, 0.98, 1.02, 1.12, 1.18])
HOUR_INTENSITY = np.array(
    [0.4, 0.25, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.1, 1.2, 1.3,
     1.4, 1.3, 1.2, 1.2, 1.3, 1.5, 1.8, 2.0, 2.0, 1.7, 1.2, 0.7]
)  # fmt: skip
MARKETING_OPT_IN_SHARE = 0.45
FAVOURITE_CATEGORY_SHARE = 0.5
MIN_AMOUNT_CENTS = 99


@dataclass(frozen=True)
class SyntheticShop:
    """Generated customers and orders, and when each churned customer stopped buying."""

    customers: list[CustomerRow]
    orders: list[OrderRow]
    churned_at: dict[str, datetime]


def _shares(values: tuple[float, ...] | list[float]) -> FloatArray:
    weights = np.asarray(values, dtype=np.float64)
    return weights / weights.sum()


def _circular_days(day_of_year: IntArray, centre: float) -> FloatArray:
    distance = np.abs(day_of_year - centre)
    return np.minimum(distance, 365.0 - distance)


def daily_intensity(holiday_response: float) -> FloatArray:
    """Relative order intensity of every day the shop is open, for one segment."""
    days = [SHOP_OPENS + timedelta(days=offset) for offset in range(SHOP_DAYS)]
    day_of_year = np.array([day.timetuple().tm_yday for day in days], dtype=np.int64)
    weekday = np.array([day.weekday() for day in days], dtype=np.int64)
    december = 0.9 * np.exp(-0.5 * (_circular_days(day_of_year, 350) / 11) ** 2)
    black_friday = 0.7 * np.exp(-0.5 * (_circular_days(day_of_year, 330) / 2.5) ** 2)
    january_lull = 0.25 * np.exp(-0.5 * (_circular_days(day_of_year, 25) / 14) ** 2)
    summer_lull = 0.12 * np.exp(-0.5 * (_circular_days(day_of_year, 205) / 25) ** 2)
    yearly = 1.0 + holiday_response * (december + black_friday) - january_lull - summer_lull
    intensity: FloatArray = yearly * WEEKDAY_INTENSITY[weekday]
    return intensity


class SeasonalClock:
    """Maps time (in days since opening) to cumulative order intensity and back."""

    def __init__(self, intensity: FloatArray) -> None:
        self.intensity = intensity
        self.cumulative = np.concatenate([[0.0], np.cumsum(intensity)])

    def mass(self, days: FloatArray) -> FloatArray:
        """Cumulative intensity from opening up to ``days``."""
        whole = np.minimum(np.floor(days).astype(np.int64), len(self.intensity) - 1)
        mass: FloatArray = self.cumulative[whole] + self.intensity[whole] * (days - whole)
        return mass

    def time_at(self, mass: FloatArray) -> FloatArray:
        """Days since opening at which the cumulative intensity reaches ``mass``."""
        whole = np.searchsorted(self.cumulative, mass, side="right") - 1
        whole = np.clip(whole, 0, len(self.intensity) - 1)
        days: FloatArray = whole + (mass - self.cumulative[whole]) / self.intensity[whole]
        return days


def _time_of_day(rng: np.random.Generator, day_fraction: FloatArray) -> FloatArray:
    """Reshape uniform fractions of a day into the shop's hour-of-day profile."""
    hour_cdf = np.concatenate([[0.0], np.cumsum(HOUR_INTENSITY) / HOUR_INTENSITY.sum()])
    reshaped: FloatArray = np.interp(day_fraction, hour_cdf, np.linspace(0.0, 1.0, 25))
    return reshaped


@dataclass(frozen=True)
class _Population:
    """Customer attributes as arrays, ordered by sign-up."""

    segment: IntArray
    country: npt.NDArray[np.str_]
    channel: npt.NDArray[np.str_]
    opt_in: npt.NDArray[np.bool_]
    favourite: IntArray
    signup_day: FloatArray
    active_until_day: FloatArray
    churned: npt.NDArray[np.bool_]
    rate: FloatArray


def _draw_population(rng: np.random.Generator, count: int) -> _Population:
    """Draw customers: who they are, when they sign up, how fast they buy, when they churn."""
    segment = rng.choice(len(SEGMENTS), size=count, p=_shares([s.share for s in SEGMENTS]))
    country = rng.choice(list(COUNTRIES), size=count, p=_shares(list(COUNTRIES.values())))
    channel = rng.choice(list(CHANNELS), size=count, p=_shares(list(CHANNELS.values())))
    opt_in = rng.random(count) < MARKETING_OPT_IN_SHARE
    favourite = rng.choice(len(CATEGORIES), size=count, p=_shares([c.share for c in CATEGORIES]))

    # Acquisition grows over time: sign-up density rises linearly-ish towards the end.
    signup_span = SHOP_DAYS - LAST_SIGNUP_DAYS_BEFORE_CLOSE
    signup_day = np.sort(rng.power(1.6, size=count)) * signup_span
    signup_day = np.floor(signup_day * SECONDS_PER_DAY) / SECONDS_PER_DAY

    churn_share = np.array([s.churn_share for s in SEGMENTS])[segment]
    mean_days_to_churn = np.array([s.mean_days_to_churn for s in SEGMENTS])[segment]
    churn_day = signup_day + 1.0 + rng.exponential(mean_days_to_churn)
    churn_day = np.ceil(churn_day * SECONDS_PER_DAY) / SECONDS_PER_DAY
    churned = (rng.random(count) < churn_share) & (churn_day < SHOP_DAYS)
    active_until_day = np.where(churned, churn_day, float(SHOP_DAYS))

    # Purchase rates vary within a segment too (gamma heterogeneity, as in NBD models).
    yearly_rate = np.array([s.orders_per_year for s in SEGMENTS])[segment]
    rate = yearly_rate * rng.gamma(2.0, 0.5, size=count)
    return _Population(
        segment, country, channel, opt_in, favourite, signup_day, active_until_day, churned, rate
    )


def _place_orders(
    rng: np.random.Generator, people: _Population, orders: int
) -> tuple[IntArray, IntArray]:
    """Allot exactly ``orders`` orders to customers and give each a time (seconds)."""
    if orders == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    clocks = [SeasonalClock(daily_intensity(s.holiday_response)) for s in SEGMENTS]
    start_mass = np.empty_like(people.signup_day)
    end_mass = np.empty_like(people.signup_day)
    for index, clock in enumerate(clocks):
        members = people.segment == index
        start_mass[members] = clock.mass(people.signup_day[members])
        end_mass[members] = clock.mass(people.active_until_day[members])

    expected = people.rate * (end_mass - start_mass)
    per_customer = rng.multinomial(orders, expected / expected.sum())
    buyer = np.repeat(np.arange(len(per_customer)), per_customer)

    mass = start_mass[buyer] + rng.random(orders) * (end_mass[buyer] - start_mass[buyer])
    day = np.empty(orders, dtype=np.float64)
    for index, clock in enumerate(clocks):
        placed = people.segment[buyer] == index
        day[placed] = clock.time_at(mass[placed])
    whole_day = np.floor(day)
    day = whole_day + _time_of_day(rng, day - whole_day)

    # Reshaping the hour can move an order before sign-up or past churn on those very days.
    seconds = np.floor(day * SECONDS_PER_DAY).astype(np.int64)
    earliest = np.round(people.signup_day[buyer] * SECONDS_PER_DAY).astype(np.int64)
    latest = np.round(people.active_until_day[buyer] * SECONDS_PER_DAY).astype(np.int64) - 1
    seconds = np.clip(seconds, earliest, latest)
    return buyer, seconds


def _price_orders(
    rng: np.random.Generator, people: _Population, buyer: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Category, number of items and amount in cents of every order."""
    count = len(buyer)
    any_category = rng.choice(len(CATEGORIES), size=count, p=_shares([c.share for c in CATEGORIES]))
    loyal = rng.random(count) < FAVOURITE_CATEGORY_SHARE
    category = np.where(loyal, people.favourite[buyer], any_category)

    segment = people.segment[buyer]
    items_extra = np.array([s.items_extra_mean for s in SEGMENTS])[segment]
    items = 1 + rng.poisson(items_extra)

    median = np.array([c.median_price for c in CATEGORIES])[category]
    sigma = np.array([c.price_sigma for c in CATEGORIES])[category]
    unit_price = rng.lognormal(np.log(median), sigma)
    multiplier = np.array([s.value_multiplier for s in SEGMENTS])[segment]
    cents = np.round(unit_price * multiplier * items * 100).astype(np.int64)
    return category, items, np.maximum(cents, MIN_AMOUNT_CENTS)


def _moment(seconds: int) -> datetime:
    return SHOP_OPENS + timedelta(seconds=seconds)


def generate_shop(customers: int, orders: int, seed: int) -> SyntheticShop:
    """Customers and exactly ``orders`` orders, identical for the same arguments."""
    if customers < 0 or orders < 0:
        raise ValueError(f"counts must not be negative (customers={customers}, orders={orders})")
    if orders and not customers:
        raise ValueError("orders need at least one customer")
    if seed < 0:
        raise ValueError(f"seed must not be negative, got {seed}")
    rng = np.random.default_rng(seed)
    people = _draw_population(rng, customers)
    buyer, seconds = _place_orders(rng, people, orders)
    category, items, cents = _price_orders(rng, people, buyer)

    customer_ids = [f"syn{seed}-{number}" for number in range(1, customers + 1)]
    signup_seconds = np.round(people.signup_day * SECONDS_PER_DAY).astype(np.int64)
    customer_rows = [
        CustomerRow(
            customer_id=customer_ids[index],
            email=f"user{index + 1}@example.com",
            segment=SEGMENTS[people.segment[index]].name,
            country=str(people.country[index]),
            acquisition_channel=str(people.channel[index]),
            signup_at=_moment(int(signup_seconds[index])),
            marketing_opt_in=bool(people.opt_in[index]),
            source=SOURCE,
        )
        for index in range(customers)
    ]

    in_time_order = np.argsort(seconds, kind="stable")
    order_rows = [
        OrderRow(
            order_id=f"syn{seed}-o{number}",
            customer_id=customer_ids[buyer[index]],
            amount=Decimal(int(cents[index])).scaleb(-2),
            items=int(items[index]),
            category=CATEGORIES[category[index]].name,
            status="completed",
            created_at=_moment(int(seconds[index])),
        )
        for number, index in enumerate(in_time_order.tolist(), start=1)
    ]

    churn_seconds = np.round(people.active_until_day * SECONDS_PER_DAY).astype(np.int64)
    churned_at = {
        customer_ids[index]: _moment(int(churn_seconds[index]))
        for index in np.flatnonzero(people.churned).tolist()
    }
    return SyntheticShop(customer_rows, order_rows, churned_at)


def load_synthetic(
    postgres_url: str,
    customers: int = 10_000,
    orders: int = 100_000,
    seed: int = 7,
    *,
    chunk_size: int = DEFAULT_CHUNK_ORDERS,
    progress: bool = True,
) -> LoadReport:
    """Generate a synthetic shop for ``seed`` and load it into PostgreSQL in event-time order."""
    started = time.monotonic()
    shop = generate_shop(customers, orders, seed)
    log.info(
        "generated %d customers (%d churn) and %d orders for seed %d in %.1f s",
        len(shop.customers),
        len(shop.churned_at),
        len(shop.orders),
        seed,
        time.monotonic() - started,
    )
    counts = asyncio.run(
        insert_in_event_order(
            postgres_url, shop.customers, shop.orders, chunk_size=chunk_size, progress=progress
        )
    )
    report = LoadReport.from_counts("synthetic", counts, seconds=time.monotonic() - started)
    log_report(report)
    return report
