"""Alerts for HTTP clients: recent ones from ``cw:alerts``, new ones from ``churn-alerts``.

One Kafka consumer per gateway process (no consumer group, nothing committed) starts at the
end of every partition and fans each new alert out to the server-sent-event subscribers. It
runs only while someone subscribes (and a grace period after the last one leaves): an idle
consumer still sends fetch requests, which cost the lookups CPU for nobody's benefit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, cast

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from churnwire.config import Settings
from churnwire.gateway.validation import AlertQuery
from churnwire.kafka_client import aiokafka_config
from churnwire.state.layout import RECENT_ALERTS
from churnwire.topics import CHURN_ALERTS

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 1000
RETRY_SECONDS = 2.0
# The consumer is stopped once nobody has subscribed for this long.
IDLE_SECONDS = 30.0


def _decode(raw: str | bytes) -> dict[str, Any] | None:
    try:
        alert = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    return alert if isinstance(alert, dict) else None


async def recent_alerts(client: aioredis.Redis, query: AlertQuery) -> dict[str, Any]:
    """Alerts after ``since`` (oldest first), or the newest ones; with the next ``since``."""
    entries: list[tuple[str, float]]
    if query.since is None:
        newest = await client.zrevrange(RECENT_ALERTS, 0, query.limit - 1, withscores=True)
        entries = list(reversed(cast(list[tuple[str, float]], newest)))
    else:
        entries = cast(list[tuple[str, float]], await client.zrangebyscore(
            RECENT_ALERTS, f"({query.since}", "+inf", start=0, num=query.limit, withscores=True
        ))
    alerts = []
    for raw, _score in entries:
        alert = _decode(raw)
        if alert is None:
            log.warning("skipping an undecodable entry of %s", RECENT_ALERTS)
            continue
        alerts.append(alert)
    last = int(entries[-1][1]) if entries else query.since
    return {"alerts": alerts, "next_since": last}


class AlertBroadcaster:
    """Reads ``churn-alerts`` from its end and hands each alert to every subscriber queue."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._wanted = asyncio.Event()
        self._last_left = float("-inf")
        self.ready = asyncio.Event()
        self.dropped = 0

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives every alert published once ``ready`` is set."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        self._wanted.set()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to ``queue``."""
        self._subscribers.discard(queue)
        if not self._subscribers:
            self._last_left = time.monotonic()

    def _still_wanted(self) -> bool:
        return bool(self._subscribers) or time.monotonic() - self._last_left < IDLE_SECONDS

    async def _start_consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **aiokafka_config(self._settings), group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(CHURN_ALERTS) or set()
            if not partitions:
                raise LookupError(f"topic {CHURN_ALERTS} has no partitions (does it exist?)")
            assigned = [TopicPartition(CHURN_ALERTS, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            await consumer.seek_to_end(*assigned)
            for partition in assigned:  # resolve the end offsets now, not at the first fetch
                await consumer.position(partition)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    def _publish(self, raw: bytes | None) -> None:
        alert = _decode(raw) if raw is not None else None
        if alert is None:
            log.warning("skipping an undecodable message on %s", CHURN_ALERTS)
            return
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(alert)
            except asyncio.QueueFull:
                self.dropped += 1  # a subscriber that does not read does not stall the others

    async def run(self) -> None:
        """Consume while subscribed, until cancelled; reconnect after broker failures (a task)."""
        while True:
            await self._wanted.wait()
            try:
                consumer = await self._start_consumer()
            except Exception as error:
                log.warning("alert stream not connected (%s); retrying", error)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            log.info("alert stream reading %s from its end", CHURN_ALERTS)
            self.ready.set()
            try:
                while self._still_wanted():
                    batches = await consumer.getmany(timeout_ms=500)
                    for messages in batches.values():
                        for message in messages:
                            self._publish(message.value)
                log.info("alert stream stopped: no subscriber for %.0f s", IDLE_SECONDS)
                self._wanted.clear()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("alert stream failed (%s); reconnecting", error)
            finally:
                self.ready.clear()
                with contextlib.suppress(Exception):
                    await consumer.stop()


def sse_message(alert: dict[str, Any]) -> bytes:
    """One server-sent event for an alert: ``id`` is the alert id, ``event`` its type."""
    lines = []
    for field, value in (("id", alert.get("alert_id")), ("event", alert.get("type"))):
        if isinstance(value, str) and value and not any(c in value for c in "\r\n\0"):
            lines.append(f"{field}: {value}")
    lines.append(f"data: {json.dumps(alert, separators=(',', ':'))}")
    return ("\n".join(lines) + "\n\n").encode()
