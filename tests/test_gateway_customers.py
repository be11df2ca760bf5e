"""Customer lookups through the running gateway: one, a batch, unknown ids, bad input."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
import redis

from churnwire.state.features import (
    FEATURES,
    MICROS_PER_DAY,
    CustomerProfile,
    OrderFact,
    WebFact,
    compute_features,
)
from churnwire.timeutil import parse_iso_micros
from tests.gateway_helpers import error_of, write_customer

DAY = MICROS_PER_DAY


def as_of_of(document: dict[str, Any]) -> int:
    return parse_iso_micros(document["as_of"])


def stored_customer(client: redis.Redis, customer_id: str, as_of_hint: int,
                    scored: bool = True) -> tuple[CustomerProfile, list[OrderFact], list[WebFact]]:
    """Write a customer with orders and web events shortly before ``as_of_hint``."""
    profile = CustomerProfile(customer_id, signup_at=as_of_hint - 400 * DAY, segment="vip",
                              country="DE", acquisition_channel="search", marketing_opt_in=True)
    orders = [
        OrderFact(f"{customer_id}-o1", as_of_hint - 100 * DAY, 20.0, 2, "completed"),
        OrderFact(f"{customer_id}-o2", as_of_hint - 10 * DAY, 35.5, 1, "completed"),
        OrderFact(f"{customer_id}-o3", as_of_hint - 5 * DAY, 99.0, 1, "cancelled"),
    ]
    web = [
        WebFact(f"{customer_id}-w1", as_of_hint - 2 * DAY, "session_start"),
        WebFact(f"{customer_id}-w2", as_of_hint - 2 * DAY + 1000, "page_view"),
        WebFact(f"{customer_id}-w3", as_of_hint - 20 * DAY, "add_to_cart"),
    ]
    score = {"probability": "0.83", "model_version": "20261204T0512-3f2a", "variant": "champion",
             "risk_band": "high", "scored_at": str(as_of_hint - DAY)} if scored else None
    write_customer(client, profile, orders, web, score)
    return profile, orders, web


def current_as_of(api: httpx.Client, probe_id: str, redis_client: redis.Redis) -> int:
    """The gateway's as-of time now (read through a throwaway customer)."""
    write_customer(redis_client, CustomerProfile(probe_id, signup_at=0))
    return as_of_of(api.get(f"/v1/customers/{probe_id}").json())


def assert_features_equal(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    kinds = {spec.name: spec.kind for spec in FEATURES}
    assert set(actual) == set(expected)
    for name, value in expected.items():
        got = actual[name]
        if value is None:
            assert got is None, name
        elif kinds[name] == "timestamp":
            assert parse_iso_micros(got) == value, name
        elif kinds[name] == "float":
            assert math.isclose(got, value, abs_tol=1e-9), (name, got, value)
        else:
            assert got == value, name


def test_a_customer_has_the_features_of_the_one_definition_and_its_score(
    api: httpx.Client, redis_client: redis.Redis, unique: str
) -> None:
    hint = current_as_of(api, f"{unique}-probe", redis_client)
    profile, orders, web = stored_customer(redis_client, unique, hint)

    response = api.get(f"/v1/customers/{unique}")

    assert response.status_code == 200, response.text
    document = response.json()
    assert set(document) == {"customer_id", "as_of", "features", "churn"}
    assert document["customer_id"] == unique
    as_of = as_of_of(document)
    assert_features_equal(document["features"], compute_features(orders, profile, as_of, web))
    assert document["features"]["orders_lifetime"] == 2  # the cancelled order does not count
    assert document["features"]["sessions_7d"] == 1
    assert document["churn"] == {
        "probability": 0.83, "model_version": "20261204T0512-3f2a", "risk_band": "high",
        "scored_at": document["churn"]["scored_at"],
    }
    assert parse_iso_micros(document["churn"]["scored_at"]) == hint - DAY


def test_churn_is_null_until_the_customer_is_scored(
    api: httpx.Client, redis_client: redis.Redis, unique: str
) -> None:
    stored_customer(redis_client, unique, 1_000 * DAY, scored=False)
    document = api.get(f"/v1/customers/{unique}").json()
    assert document["churn"] is None
    assert document["features"]["orders_lifetime"] >= 1


def test_an_unknown_customer_is_a_404_with_a_message(api: httpx.Client, unique: str) -> None:
    response = api.get(f"/v1/customers/{unique}-nobody")
    assert response.status_code == 404
    assert f"{unique}-nobody" in error_of(response)


@pytest.mark.parametrize("bad_id", ["has space", "a{tag}", "-leading-dash", "x" * 129, "é"])
def test_an_invalid_customer_id_is_a_422(api: httpx.Client, bad_id: str) -> None:
    response = api.get(f"/v1/customers/{httpx.URL(path=bad_id).raw_path.decode()}")
    assert response.status_code == 422
    assert "customer_id" in error_of(response)


def test_batch_lookup_answers_known_and_unknown_ids_in_request_order(
    api: httpx.Client, redis_client: redis.Redis, unique: str
) -> None:
    ids = [f"{unique}-{n}" for n in range(5)]
    stored = {customer_id: stored_customer(redis_client, customer_id, 1_000 * DAY)
              for customer_id in ids[:3]}
    asked = [ids[2], ids[3], ids[0], ids[2], ids[1], ids[4]]

    response = api.post("/v1/customers/lookup", json={"customer_ids": asked})

    assert response.status_code == 200, response.text
    document = response.json()
    assert [c["customer_id"] for c in document["customers"]] == [ids[2], ids[0], ids[1]]
    assert document["not_found"] == [ids[3], ids[4]]
    assert all(c["as_of"] == document["as_of"] for c in document["customers"])
    for customer in document["customers"]:
        profile, orders, web = stored[customer["customer_id"]]
        expected = compute_features(orders, profile, as_of_of(document), web)
        assert_features_equal(customer["features"], expected)


def test_a_batch_of_a_thousand_is_served_and_one_more_is_refused(
    api: httpx.Client, unique: str
) -> None:
    ids = [f"{unique}-{n}" for n in range(1001)]
    response = api.post("/v1/customers/lookup", json={"customer_ids": ids[:1000]})
    assert response.status_code == 200 and len(response.json()["not_found"]) == 1000
    response = api.post("/v1/customers/lookup", json={"customer_ids": ids})
    assert response.status_code == 422
    assert "at most 1000" in error_of(response)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b"{}", 422, "customer_ids"),
        (b'{"customer_ids": []}', 422, "non-empty"),
        (b'{"customer_ids": ["ok", 7]}', 422, "customer_ids[1]"),
        (b'{"customer_ids": ["ok"], "extra": 1}', 422, "unknown field"),
    ],
)
def test_a_bad_lookup_body_gets_a_clear_refusal(
    api: httpx.Client, body: bytes, status: int, message: str
) -> None:
    response = api.post("/v1/customers/lookup", content=body,
                        headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert message in error_of(response)


def test_a_body_over_the_limit_is_a_413_declared_or_chunked(api: httpx.Client) -> None:
    limit = 1_048_576
    big = b'{"customer_ids": ["' + b"a" * limit + b'"]}'
    response = api.post("/v1/customers/lookup", content=big)
    assert response.status_code == 413
    assert str(limit) in error_of(response)

    def chunks() -> Any:
        yield b'{"customer_ids": ["'
        for _ in range(20):
            yield b"a" * 65_536
        yield b'"]}'

    response = api.post("/v1/customers/lookup", content=chunks())
    assert response.status_code == 413
