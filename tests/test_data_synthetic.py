"""Synthetic shop generation (pure), event-ordered chunking, and loading into PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from statistics import mean
from typing import Any

import asyncpg
import pytest

from churnwire.data.loading import CustomerRow, OrderRow, plan_chunks
from churnwire.data.synthetic import SEGMENTS, SHOP_CLOSES, generate_shop, load_synthetic
from churnwire.embedded.stack import Stack
from tests.worker_helpers import drain


@pytest.fixture(scope="module")
def shop_of_seed_3() -> Any:
    return generate_shop(customers=2_000, orders=20_000, seed=3)


def test_counts_and_ids_are_exact(shop_of_seed_3: Any) -> None:
    shop = shop_of_seed_3

    assert len(shop.customers) == 2_000
    assert len(shop.orders) == 20_000
    assert shop.customers[0].customer_id == "syn3-1"
    assert shop.customers[0].email == "user1@example.com"
    assert shop.orders[0].order_id == "syn3-o1"
    assert len({order.order_id for order in shop.orders}) == 20_000
    assert len({customer.customer_id for customer in shop.customers}) == 2_000


@pytest.mark.parametrize("customers, orders", [(1, 7), (5, 0), (0, 0), (300, 1)])
def test_small_and_empty_shops(customers: int, orders: int) -> None:
    shop = generate_shop(customers, orders, seed=1)

    assert (len(shop.customers), len(shop.orders)) == (customers, orders)


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one customer"):
        generate_shop(0, 10, seed=1)
    with pytest.raises(ValueError, match="negative"):
        generate_shop(-1, 0, seed=1)
    with pytest.raises(ValueError, match="seed"):
        generate_shop(1, 1, seed=-5)


def test_the_same_seed_gives_the_same_shop(shop_of_seed_3: Any) -> None:
    again = generate_shop(customers=2_000, orders=20_000, seed=3)
    other = generate_shop(customers=2_000, orders=20_000, seed=4)

    assert again == shop_of_seed_3
    assert [order.amount for order in other.orders] != [
        order.amount for order in shop_of_seed_3.orders
    ]


def test_orders_are_in_event_time_within_each_customers_life(shop_of_seed_3: Any) -> None:
    shop = shop_of_seed_3
    signup = {customer.customer_id: customer.signup_at for customer in shop.customers}
    times = [order.created_at for order in shop.orders]

    assert times == sorted(times)
    assert [c.signup_at for c in shop.customers] == sorted(c.signup_at for c in shop.customers)
    for order in shop.orders:
        assert signup[order.customer_id] <= order.created_at < SHOP_CLOSES
        churned_at = shop.churned_at.get(order.customer_id)
        assert churned_at is None or order.created_at < churned_at


def test_a_share_of_customers_churns(shop_of_seed_3: Any) -> None:
    shop = shop_of_seed_3
    share = len(shop.churned_at) / len(shop.customers)

    assert 0.15 < share < 0.6
    last_order: dict[str, datetime] = {}
    for order in shop.orders:
        last_order[order.customer_id] = order.created_at
    buyers_who_churned = [c for c in shop.churned_at if c in last_order]
    assert buyers_who_churned
    # Churned customers go quiet well before the shop closes, on average.
    quiet = [SHOP_CLOSES - last_order[c] for c in buyers_who_churned]
    assert sum(quiet, timedelta()) / len(quiet) > timedelta(days=120)


def test_segments_differ_in_spend_and_all_attributes_are_set(shop_of_seed_3: Any) -> None:
    shop = shop_of_seed_3
    segment_of = {customer.customer_id: customer.segment for customer in shop.customers}
    spend: dict[str, list[Decimal]] = {segment.name: [] for segment in SEGMENTS}
    for order in shop.orders:
        spend[str(segment_of[order.customer_id])].append(order.amount)

    assert mean(spend["vip"]) > 2 * mean(spend["bargain-hunter"])
    assert set(segment_of.values()) == {segment.name for segment in SEGMENTS}
    assert all(c.country and c.acquisition_channel for c in shop.customers)
    assert len({order.category for order in shop.orders}) == 6
    assert all(order.amount > 0 and order.items >= 1 for order in shop.orders)


def test_december_peaks_and_weekends_are_busier(shop_of_seed_3: Any) -> None:
    day_counts = Counter(order.created_at.date() for order in shop_of_seed_3.orders)
    december = [n for day, n in day_counts.items() if (day.year, day.month) == (2024, 12)]
    october = [n for day, n in day_counts.items() if (day.year, day.month) == (2024, 10)]
    weekday = Counter(order.created_at.weekday() for order in shop_of_seed_3.orders)

    assert mean(december) > 1.4 * mean(october)
    assert min(weekday[5], weekday[6]) > max(weekday[1], weekday[2])


def _customer(customer_id: str, signup_day: int) -> CustomerRow:
    signup = datetime(2024, 1, signup_day, tzinfo=UTC)
    return CustomerRow(customer_id, None, None, None, None, signup, False, "test")


def _order(order_id: str, customer_id: str, day: int) -> OrderRow:
    created = datetime(2024, 1, day, tzinfo=UTC)
    return OrderRow(order_id, customer_id, Decimal("1.00"), 1, None, "completed", created)


def test_chunks_put_every_customer_before_their_first_order() -> None:
    customers = [_customer("a", 1), _customer("b", 3), _customer("c", 9), _customer("late", 20)]
    orders = [_order("o5", "b", 5), _order("o2", "a", 2), _order("o4", "a", 4)]
    # "c" orders before signing up: inconsistent, but still written after its customer.
    orders += [_order("o6", "c", 6), _order("o3", "b", 3), _order("o7", "c", 7)]

    chunks = list(plan_chunks(customers, orders, chunk_size=2))

    assert [[o.order_id for o in chunk.orders] for chunk in chunks] == [
        ["o2", "o3"],
        ["o4", "o5"],
        ["o6", "o7"],
        [],
    ]
    assert [[c.customer_id for c in chunk.customers] for chunk in chunks] == [
        ["a", "b"],
        [],
        ["c"],
        ["late"],
    ]


def test_chunks_of_the_generated_shop_respect_the_size_and_the_order(shop_of_seed_3: Any) -> None:
    written: set[str] = set()
    previous = datetime.min.replace(tzinfo=UTC)

    for chunk in plan_chunks(shop_of_seed_3.customers, shop_of_seed_3.orders, chunk_size=3_000):
        assert len(chunk.orders) <= 3_000
        written.update(customer.customer_id for customer in chunk.customers)
        for order in chunk.orders:
            assert order.customer_id in written
            assert order.created_at >= previous
            previous = order.created_at

    assert len(written) == len(shop_of_seed_3.customers)


def _fetch(postgres_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(postgres_url)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def test_load_is_event_ordered_and_idempotent(stack: Stack, unique: str) -> None:
    url = stack.settings.postgres_url
    seed = int(unique, 16)

    first = load_synthetic(url, customers=500, orders=5_000, seed=seed, chunk_size=1_000)
    again = load_synthetic(url, customers=500, orders=5_000, seed=seed, chunk_size=1_000)

    assert (first.customers_inserted, first.orders_inserted, first.skipped) == (500, 5_000, 0)
    assert (again.customers_inserted, again.orders_inserted) == (0, 0)
    assert (again.customers_present, again.orders_present) == (500, 5_000)

    # A later transaction has a larger xmin: orders committed later never go back in time,
    # and no customer is committed after their first order.
    orders = _fetch(
        url,
        "SELECT xmin::text::bigint AS committed_in, created_at FROM orders "
        "WHERE order_id LIKE $1 ORDER BY 1, 2",
        f"syn{seed}-o%",
    )
    assert len({row["committed_in"] for row in orders}) == 5
    assert [row["created_at"] for row in orders] == sorted(row["created_at"] for row in orders)
    late_customers = _fetch(
        url,
        "SELECT c.customer_id FROM customers c JOIN orders o USING (customer_id) "
        "WHERE c.customer_id LIKE $1 AND c.xmin::text::bigint > o.xmin::text::bigint",
        f"syn{seed}-%",
    )
    assert late_customers == []


@pytest.mark.slow
def test_ten_thousand_customers_and_100k_orders_load_well_under_a_minute(
    stack: Stack, unique: str
) -> None:
    started = time.monotonic()

    report = load_synthetic(stack.settings.postgres_url, seed=int(unique, 16) + 1)

    assert (report.customers_inserted, report.orders_inserted) == (10_000, 100_000)
    assert time.monotonic() - started < 45
    # The 110,000 change events flow on through CDC and the worker; let them settle here so
    # later tests measure their own changes, not this backlog.
    drain(stack.settings, timeout=900.0)
