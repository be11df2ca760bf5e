"""Fixtures and helpers of the gateway tests: keys, an HTTP client, state written into Redis.

State is written exactly as the stream worker writes it (see churnwire/state/layout.py), into
the session's real Redis.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import httpx
import pytest
import redis

from churnwire.config import Settings
from churnwire.embedded.stack import Stack
from churnwire.gateway.keys import create_api_key
from churnwire.state.features import CustomerProfile, OrderFact, WebFact
from churnwire.state.layout import (
    CUSTOMERS_INDEX,
    encode_order,
    encode_profile,
    orders_key,
    profile_key,
    score_key,
    web_key,
)

POSITION = "0" * 19 + "1"


def gateway_url(settings: Settings) -> str:
    """Base URL of the session's gateway."""
    return f"http://127.0.0.1:{settings.gateway_port}"


@pytest.fixture(scope="session")
def read_key(stack: Stack) -> str:
    """An API key with read scope."""
    return create_api_key(stack.settings.redis_url, "tests-read", "read")


@pytest.fixture(scope="session")
def write_key(stack: Stack) -> str:
    """An API key with write scope."""
    return create_api_key(stack.settings.redis_url, "tests-write", "write")


@pytest.fixture
def api(stack: Stack, read_key: str) -> Iterator[httpx.Client]:
    """An HTTP client of the gateway that sends the read key."""
    with httpx.Client(base_url=gateway_url(stack.settings), timeout=30,
                      headers={"Authorization": f"Bearer {read_key}"}) as client:
        yield client


@pytest.fixture
def anonymous(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client of the gateway without credentials."""
    with httpx.Client(base_url=gateway_url(stack.settings), timeout=30) as client:
        yield client


@pytest.fixture
def redis_client(stack: Stack) -> Iterator[redis.Redis]:
    """A client of the session's Redis (strings)."""
    client = redis.Redis.from_url(stack.settings.redis_url, decode_responses=True)
    yield client
    client.close()


def write_customer(
    client: redis.Redis,
    profile: CustomerProfile,
    orders: Sequence[OrderFact] = (),
    web: Sequence[WebFact] = (),
    score: dict[str, str] | None = None,
) -> None:
    """Store a customer's profile, orders, web events and score as the worker does."""
    pipe = client.pipeline(transaction=False)
    pipe.hset(profile_key(profile.customer_id),
              mapping={"_pos": POSITION, **encode_profile(profile)})
    pipe.sadd(CUSTOMERS_INDEX, profile.customer_id)
    for order in orders:
        pipe.hset(orders_key(profile.customer_id), order.order_id,
                  f"{POSITION}|{encode_order(order)}")
    for event in web:
        pipe.hset(web_key(profile.customer_id), event.event_id,
                  f"{event.occurred_at}|{event.type}")
    if score:
        pipe.hset(score_key(profile.customer_id), mapping=score)
    pipe.execute()


def error_of(response: httpx.Response) -> str:
    """The message of a JSON error response (fails on anything else)."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    document = json.loads(response.text)
    assert set(document) == {"error"} and isinstance(document["error"], str), document
    assert "Traceback" not in response.text
    return str(document["error"])
