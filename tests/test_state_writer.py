"""The state writer against the real Redis: redelivery, reordering, deletes, concurrent writers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis

from churnwire.embedded.stack import Stack
from churnwire.state.features import CustomerProfile, OrderFact
from churnwire.state.layout import (
    decode_orders,
    decode_profile,
    orders_key,
    profile_key,
    tombstone_key,
)
from churnwire.state.writer import StateWriter
from churnwire.streams.changes import CustomerChange, OrderChange, OrderRow


def position(lsn: int) -> str:
    return f"{lsn:020d}"


def change(
    order_id: str, customer_id: str, lsn: int, amount: float | None, op: str = "c",
    before_customer: str | None = None,
) -> OrderChange:
    def row(customer: str, value: float) -> OrderRow:
        return OrderRow(customer, OrderFact(order_id, 1_000_000, value, 1, "completed"))

    after = row(customer_id, amount) if amount is not None else None
    before = row(before_customer or customer_id, 1.0) if op in ("u", "d") else None
    return OrderChange(order_id, position(lsn), op, before, after, 1_000_000,  # type: ignore[arg-type]
                       frozenset())


def customer(customer_id: str, lsn: int, deleted: bool = False) -> CustomerChange:
    profile = None if deleted else CustomerProfile(customer_id, signup_at=5, segment="vip")
    return CustomerChange(customer_id, position(lsn), "d" if deleted else "c", profile,
                          frozenset())


@pytest.fixture
def sync_redis(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.settings.redis_url, decode_responses=True)
    yield client
    client.close()


def apply(stack: Stack, orders: list[OrderChange] = [],  # noqa: B006
          customers: list[CustomerChange] = []) -> tuple[int, int]:  # noqa: B006
    async def run() -> tuple[int, int]:
        client = aioredis.Redis.from_url(stack.settings.redis_url, decode_responses=True)
        try:
            outcome = await StateWriter(client).apply(orders, customers)
        finally:
            await client.aclose()
        return outcome.applied, outcome.duplicates

    return asyncio.run(run())


def amounts(client: redis.Redis, customer_id: str) -> dict[str, float]:
    return {f.order_id: f.amount for f in decode_orders(client.hgetall(orders_key(customer_id)))}


def test_a_redelivered_batch_changes_nothing(stack: Stack, sync_redis: redis.Redis,
                                             unique: str) -> None:
    batch = [change(f"{unique}-{n}", unique, 100 + n, 10.0) for n in range(5)]
    assert apply(stack, batch) == (5, 0)
    assert apply(stack, batch) == (0, 5)
    assert amounts(sync_redis, unique) == {f"{unique}-{n}": 10.0 for n in range(5)}


def test_an_older_change_never_overwrites_a_newer_one(stack: Stack, sync_redis: redis.Redis,
                                                       unique: str) -> None:
    order_id = f"{unique}-o"
    assert apply(stack, [change(order_id, unique, 10, 5.0)]) == (1, 0)
    assert apply(stack, [change(order_id, unique, 20, 7.0, op="u")]) == (1, 0)
    assert apply(stack, [change(order_id, unique, 10, 5.0)]) == (0, 1)
    assert amounts(sync_redis, unique) == {order_id: 7.0}

    assert apply(stack, [change(order_id, unique, 30, None, op="d")]) == (1, 0)
    assert apply(stack, [change(order_id, unique, 20, 7.0, op="u")]) == (0, 1)
    assert amounts(sync_redis, unique) == {}, "a delete removes the order's contribution"


def test_an_order_moved_to_another_customer_leaves_the_first(
    stack: Stack, sync_redis: redis.Redis, unique: str
) -> None:
    order_id = f"{unique}-m"
    apply(stack, [change(order_id, f"{unique}-a", 10, 5.0)])
    apply(stack, [change(order_id, f"{unique}-b", 11, 5.0, op="u", before_customer=f"{unique}-a")])
    assert amounts(sync_redis, f"{unique}-a") == {}
    assert amounts(sync_redis, f"{unique}-b") == {order_id: 5.0}


def test_a_customer_delete_purges_and_blocks_stale_redelivery(
    stack: Stack, sync_redis: redis.Redis, unique: str
) -> None:
    apply(stack, [change(f"{unique}-1", unique, 11, 3.0)], [customer(unique, 10)])
    assert decode_profile(unique, sync_redis.hgetall(profile_key(unique))) is not None

    assert apply(stack, [], [customer(unique, 20, deleted=True)]) == (1, 0)
    assert not sync_redis.exists(profile_key(unique), orders_key(unique))
    # Redelivered older events, and the cascade delete of its order, leave nothing behind.
    apply(stack, [change(f"{unique}-1", unique, 11, 3.0), change(f"{unique}-1", unique, 21, None,
                                                                  op="d")],
          [customer(unique, 10)])
    assert not sync_redis.exists(profile_key(unique), orders_key(unique))
    assert sync_redis.get(tombstone_key(unique)) == position(20)

    # The same id signing up again later is a new customer.
    assert apply(stack, [], [customer(unique, 30)]) == (1, 0)
    assert not sync_redis.exists(tombstone_key(unique))


def test_concurrent_writers_on_one_customer_lose_no_update(
    stack: Stack, sync_redis: redis.Redis, unique: str
) -> None:
    async def writer(first: int) -> None:
        client = aioredis.Redis.from_url(stack.settings.redis_url, decode_responses=True)
        state = StateWriter(client)
        try:
            for start in range(first, first + 500, 50):
                await state.apply([change(f"{unique}-{n}", unique, 1000 + n, 1.0)
                                   for n in range(start, start + 50)])
        finally:
            await client.aclose()

    async def both() -> None:
        await asyncio.gather(writer(0), writer(500))

    asyncio.run(both())
    assert len(amounts(sync_redis, unique)) == 1000
