"""Alerts through the gateway: recent ones from cw:alerts, new ones streamed from Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
from typing import Any

import httpx
import pytest
import redis
from confluent_kafka import Producer

from churnwire.config import Settings
from churnwire.embedded.stack import Stack
from churnwire.gateway import alerts as alerts_module
from churnwire.gateway.alerts import AlertBroadcaster
from churnwire.state.layout import RECENT_ALERTS
from churnwire.topics import CHURN_ALERTS
from tests.gateway_helpers import error_of

# Far beyond any real publication time, so alerts of the worker never interleave with these.
FUTURE_MS = 32_000_000_000_000


def alert(customer_id: str, crossing: int, kind: str = "churn_risk") -> dict[str, Any]:
    """An alert message as docs/alerts.md documents it."""
    return {
        "alert_id": f"{customer_id}:{crossing}", "type": kind, "customer_id": customer_id,
        "probability": 0.87, "previous_probability": 0.64, "threshold": 0.8,
        "risk_band": "high", "model_version": "20261204T0512-3f2a", "variant": "champion",
        "top_features": [{"feature": "days_since_last_order", "value": 121.0,
                          "contribution": 0.92}],
        "event_time": "1997-10-04T00:00:00+00:00",
        "published_at": "2026-12-04T05:12:09.120+00:00",
    }


def test_recent_alerts_page_by_since_and_limit(
    api: httpx.Client, redis_client: redis.Redis, unique: str
) -> None:
    base = FUTURE_MS + int(unique, 16) % 1_000_000 * 1000
    alerts = [alert(unique, n) for n in range(5)]
    redis_client.zadd(RECENT_ALERTS, {json.dumps(a): base + n for n, a in enumerate(alerts)})
    try:
        first = api.get("/v1/alerts", params={"since": base - 1, "limit": 2}).json()
        assert first["alerts"] == alerts[:2] and first["next_since"] == base + 1
        rest = api.get("/v1/alerts", params={"since": first["next_since"]}).json()
        assert [a["alert_id"] for a in rest["alerts"]][:3] == [f"{unique}:{n}" for n in (2, 3, 4)]
        newest = api.get("/v1/alerts", params={"limit": 1}).json()
        assert newest["alerts"][0]["customer_id"] >= ""  # some alert, newest overall
    finally:
        redis_client.zrem(RECENT_ALERTS, *[json.dumps(a) for a in alerts])


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"since": "-5"},
               {"since": "1.5"}, {"since": "9" * 16}],
)
def test_bad_alert_parameters_are_a_422(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/v1/alerts", params=params)
    assert response.status_code == 422
    assert next(iter(params)) in error_of(response)


def _listen(url: str, key: str, received: queue.Queue[str], stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.stream("GET", f"{url}/v1/alerts/stream", headers=headers,
                          timeout=30) as reply:
            received.put(f"status {reply.status_code} {reply.headers['content-type']}")
            for line in reply.iter_lines():
                received.put(line)
                if stop.is_set():
                    return
    except httpx.HTTPError as error:  # the gateway stopped at the end of the session
        received.put(f"closed: {error}")


def test_the_stream_delivers_an_alert_produced_to_churn_alerts(
    stack: Stack, read_key: str, unique: str
) -> None:
    received: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    url = f"http://127.0.0.1:{stack.settings.gateway_port}"
    listener = threading.Thread(target=_listen, args=(url, read_key, received, stop),
                                daemon=True)
    listener.start()
    assert received.get(timeout=30).startswith("status 200 text/event-stream")
    assert received.get(timeout=30) == ": connected"

    message = alert(unique, 1)
    producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap})
    producer.produce(CHURN_ALERTS, key=unique.encode(), value=json.dumps(message).encode())
    assert producer.flush(30) == 0

    lines = []
    deadline = time.monotonic() + 30
    while not any(line.startswith("data: ") and unique in line for line in lines):
        assert time.monotonic() < deadline, f"no alert streamed; got {lines}"
        lines.append(received.get(timeout=max(deadline - time.monotonic(), 0.1)))
    stop.set()
    data = next(line for line in lines if line.startswith("data: ") and unique in line)
    assert json.loads(data.removeprefix("data: ")) == message
    position = lines.index(data)
    assert lines[position - 2:position] == [f"id: {unique}:1", "event: churn_risk"]


class _IdleConsumer:
    """Stands in for the Kafka consumer: never has a message; records whether it was stopped."""

    def __init__(self) -> None:
        self.stopped = False

    async def getmany(self, timeout_ms: int) -> dict[Any, list[Any]]:
        await asyncio.sleep(0.01)
        return {}

    async def stop(self) -> None:
        self.stopped = True


def test_the_alert_consumer_runs_only_while_someone_subscribes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts_module, "IDLE_SECONDS", 0.05)
    started: list[_IdleConsumer] = []

    async def start_consumer(self: AlertBroadcaster) -> _IdleConsumer:
        started.append(_IdleConsumer())
        return started[-1]

    monkeypatch.setattr(AlertBroadcaster, "_start_consumer", start_consumer)

    async def scenario() -> None:
        broadcaster = AlertBroadcaster(settings)
        task = asyncio.create_task(broadcaster.run())
        await asyncio.sleep(0.2)
        assert started == []  # nobody subscribed: no consumer, no fetch requests

        queue = broadcaster.subscribe()
        await asyncio.wait_for(broadcaster.ready.wait(), 5)
        assert len(started) == 1

        broadcaster.unsubscribe(queue)
        deadline = time.monotonic() + 5
        while not started[0].stopped:
            assert time.monotonic() < deadline, "consumer still running with no subscriber"
            await asyncio.sleep(0.02)
        assert not broadcaster.ready.is_set()

        broadcaster.subscribe()  # a later subscriber starts a fresh consumer
        await asyncio.wait_for(broadcaster.ready.wait(), 5)
        assert len(started) == 2
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
