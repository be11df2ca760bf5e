"""Reads the online state from Redis and evaluates it at an as-of time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis

from churnwire.state.features import CustomerProfile, OrderFact, WebFact
from churnwire.state.layout import (
    CUSTOMERS_INDEX,
    decode_orders,
    decode_profile,
    decode_web,
    orders_key,
    profile_key,
    web_key,
)
from churnwire.state.table import feature_rows

CHUNK = 1000


def _online_customers(
    client: redis.Redis, web: dict[str, list[WebFact]]
) -> Iterator[tuple[CustomerProfile, list[OrderFact]]]:
    """Every customer with a profile and its orders; fills ``web`` with their web facts."""
    customer_ids = sorted(client.sscan_iter(CUSTOMERS_INDEX, count=CHUNK))
    for start in range(0, len(customer_ids), CHUNK):
        chunk = customer_ids[start:start + CHUNK]
        pipe = client.pipeline(transaction=False)
        for customer_id in chunk:
            pipe.hgetall(profile_key(customer_id))
            pipe.hgetall(orders_key(customer_id))
            pipe.hgetall(web_key(customer_id))
        replies = pipe.execute()
        for index, customer_id in enumerate(chunk):
            profile = decode_profile(customer_id, replies[3 * index])
            if profile is not None:
                web[customer_id] = decode_web(replies[3 * index + 2])
                yield profile, decode_orders(replies[3 * index + 1])


def read_customer(
    client: redis.Redis, customer_id: str
) -> tuple[CustomerProfile | None, list[OrderFact]]:
    """One customer's profile (None if unknown) and live orders, in one round trip."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(profile_key(customer_id))
    pipe.hgetall(orders_key(customer_id))
    profile, orders = pipe.execute()
    return decode_profile(customer_id, profile), decode_orders(orders)


def snapshot_online(redis_url: str, as_of: int) -> list[dict[str, Any]]:
    """Feature rows of every customer in Redis that exists at ``as_of``."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        web: dict[str, list[WebFact]] = {}
        customers = list(_online_customers(client, web))
        return feature_rows(customers, as_of, web)
    finally:
        client.close()
