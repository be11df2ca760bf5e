"""POST /v1/events: validated events land in web-events, the worker folds them into features,
and the offline builder (reading the topic) agrees with the online state."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from churnwire.embedded.stack import Stack
from churnwire.state.features import MICROS_PER_DAY
from churnwire.state.offline import build_offline
from churnwire.state.parity import compare_feature_rows
from churnwire.state.snapshot import snapshot_online
from churnwire.state.web_log import read_web_log
from churnwire.timeutil import from_micros, parse_iso_micros
from churnwire.topics import WEB_EVENTS
from tests.gateway_helpers import error_of
from tests.kafka_reader import TopicReader
from tests.pg import insert_orders
from tests.worker_helpers import drain

HOUR = 3_600_000_000


def at(micros: int) -> str:
    return from_micros(micros).isoformat()


@pytest.fixture
def writer(stack: Stack, write_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.settings.gateway_port}", timeout=30,
                      headers={"Authorization": f"Bearer {write_key}"}) as client:
        yield client


def test_events_land_in_kafka_change_the_features_and_match_the_offline_build(
    stack: Stack, api: httpx.Client, writer: httpx.Client, unique: str
) -> None:
    insert_orders(stack.settings.postgres_url, unique, [f"{unique}-o1"], amount="12.50")
    drain(stack.settings)
    before = api.get(f"/v1/customers/{unique}").json()
    assert before["features"]["sessions_7d"] == 0 and before["features"]["page_views_30d"] == 0
    base = parse_iso_micros(before["as_of"]) - HOUR
    events = [
        {"customer_id": unique, "type": "session_start", "occurred_at": at(base),
         "event_id": f"{unique}-s1"},
        {"customer_id": unique, "type": "page_view", "occurred_at": at(base + 1_000_000)},
        {"customer_id": unique, "type": "page_view", "occurred_at": at(base + 2_000_000)},
        {"customer_id": unique, "type": "add_to_cart",
         "occurred_at": at(base - 10 * MICROS_PER_DAY)},
        # The same event sent again: counted once.
        {"customer_id": unique, "type": "session_start", "occurred_at": at(base),
         "event_id": f"{unique}-s1"},
    ]
    topic = TopicReader(stack.settings, [WEB_EVENTS])

    response = writer.post("/v1/events", json={"events": events})

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["accepted"] == 5 and accepted["event_ids"][0] == f"{unique}-s1"
    records = topic.collect(
        lambda rs: sum(r.value["customer_id"] == unique for r in rs) >= 5, timeout=60)
    topic.close()
    mine = [r for r in records if r.value["customer_id"] == unique]
    assert {r.key for r in mine} == {unique.encode()}
    assert [r.value["event_id"] for r in mine] == accepted["event_ids"]
    assert len({r.partition for r in mine}) == 1, "keyed by customer: one partition"

    drain(stack.settings)
    after = api.get(f"/v1/customers/{unique}").json()
    features = after["features"]
    assert features["sessions_7d"] == 1 and features["page_views_7d"] == 2
    assert features["add_to_cart_7d"] == 0 and features["add_to_cart_30d"] == 1
    last_visit = base + 2_000_000
    expected_days = (parse_iso_micros(after["as_of"]) - last_visit) / MICROS_PER_DAY
    assert features["days_since_last_visit"] == pytest.approx(expected_days)

    as_of = parse_iso_micros(after["as_of"])
    web = read_web_log(stack.settings, as_of)
    assert len(web[unique]) == 4
    built = [r for r in build_offline(stack.settings.postgres_url, as_of, web)
             if r["customer_id"] == unique]
    online = [r for r in snapshot_online(stack.settings.redis_url, as_of)
              if r["customer_id"] == unique]
    assert len(built) == len(online) == 1 and built[0]["page_views_30d"] == 2
    assert compare_feature_rows(built, online) == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "page_view"}, "customer_id"),
        ({"customer_id": "ok", "type": "purchase"}, "type must be one of"),
        ({"customer_id": "ok", "type": "page_view", "occurred_at": "yesterday"}, "RFC 3339"),
        ({"customer_id": "ok", "type": "page_view", "occurred_at": "2026-01-01T00:00:00"},
         "with a zone"),
        ({"customer_id": "ok", "type": "page_view", "event_id": ""}, "event_id"),
        ({"customer_id": "ok", "type": "page_view", "colour": "red"}, "unknown field"),
    ],
)
def test_an_invalid_event_is_a_422_naming_it(
    writer: httpx.Client, event: dict[str, str], message: str
) -> None:
    good = {"customer_id": "ok", "type": "page_view"}
    response = writer.post("/v1/events", json={"events": [good, event]})
    assert response.status_code == 422
    text = error_of(response)
    assert message in text and "events[1]" in text


def test_a_refused_batch_produces_nothing(
    stack: Stack, writer: httpx.Client, unique: str
) -> None:
    topic = TopicReader(stack.settings, [WEB_EVENTS])
    refused = writer.post("/v1/events", json={"events": [
        {"customer_id": unique, "type": "page_view", "event_id": f"{unique}-refused"},
        {"customer_id": unique, "type": "bogus"},
    ]})
    assert refused.status_code == 422
    accepted = writer.post("/v1/events", json={"events": [
        {"customer_id": unique, "type": "page_view", "event_id": f"{unique}-accepted"},
    ]})
    assert accepted.status_code == 202
    # Same customer, same partition: once the later event is there, the earlier would be too.
    records = topic.collect(
        lambda rs: any(r.value["event_id"] == f"{unique}-accepted" for r in rs), timeout=60)
    topic.close()
    assert not any(r.value["event_id"] == f"{unique}-refused" for r in records)


def test_too_many_events_or_a_bad_body_is_refused(writer: httpx.Client) -> None:
    many = [{"customer_id": "ok", "type": "page_view"}] * 501
    response = writer.post("/v1/events", json={"events": many})
    assert response.status_code == 422 and "at most 500" in error_of(response)
    assert writer.post("/v1/events", content=b"nope").status_code == 400
    assert writer.post("/v1/events", json={"events": []}).status_code == 422
