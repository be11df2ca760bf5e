"""Publishes the alerts the scoring stage queued, exactly once per crossing.

The scoring script queues an alert in the worker's outbox in the same atomic step that moves
the customer's alert state, so a crossing is never lost and never queued twice. Publishing
moves a chunk from the outbox to an in-flight list, produces it to ``churn-alerts`` and waits
for every acknowledgement, then clears the in-flight list. A crash (or a broker error) between
producing and clearing leaves the chunk in flight: before sending it again, the publisher
reads the topic from shortly before the chunk was claimed and sends only the alerts whose
ids it does not find there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from confluent_kafka import Consumer, TopicPartition

from churnwire.config import Settings
from churnwire.kafka_client import confluent_config
from churnwire.models import serving_metrics as metrics
from churnwire.state.layout import RECENT_ALERTS, RECENT_ALERTS_KEPT
from churnwire.topics import CHURN_ALERTS

log = logging.getLogger(__name__)

CHUNK = 500
# Read the topic from this long before a chunk was claimed when checking what was sent.
CLOCK_SLACK_MILLISECONDS = 30_000

# KEYS: outbox, in-flight, claimed-at. ARGV: chunk size, now (ms).
_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return 0 end
redis.call('RPUSH', KEYS[2], unpack(items))
redis.call('LTRIM', KEYS[1], #items, -1)
redis.call('SET', KEYS[3], ARGV[2])
return #items
"""

Send = Callable[[bytes, bytes], Awaitable[None]]


def published_alert_ids(settings: Settings, since_ms: int) -> set[str]:
    """Ids of the alerts on ``churn-alerts`` written since ``since_ms`` (blocking)."""
    consumer = Consumer(confluent_config(
        settings, **{"group.id": "churnwire-alert-recovery", "enable.auto.commit": False}
    ))
    try:
        partitions = consumer.list_topics(CHURN_ALERTS, timeout=10).topics[CHURN_ALERTS].partitions
        wanted = [TopicPartition(CHURN_ALERTS, p, since_ms) for p in partitions]
        starts = consumer.offsets_for_times(wanted, timeout=10)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(CHURN_ALERTS, p), timeout=10)[1]
                for p in partitions}
        remaining = {s.partition for s in starts if 0 <= s.offset < ends[s.partition]}
        consumer.assign([s for s in starts if s.partition in remaining])
        found: set[str] = set()
        while remaining:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                if message.error():
                    continue
                found.add(_alert_id(message.value()))
                partition, offset = message.partition(), message.offset()
                if partition is not None and offset is not None and offset + 1 >= ends[partition]:
                    remaining.discard(partition)
        return found
    finally:
        consumer.close()


def _alert_id(value: bytes | None) -> str:
    try:
        return str(json.loads(value or b"{}").get("alert_id", ""))
    except ValueError:
        return ""


class AlertPublisher:
    """Drains one worker's outbox to the ``churn-alerts`` topic."""

    def __init__(
        self,
        client: aioredis.Redis,
        settings: Settings,
        worker_name: str,
        send: Send,
        find_published: Callable[[Settings, int], set[str]] = published_alert_ids,
    ) -> None:
        from churnwire.models.scoring import outbox_key

        self._client = client
        self._settings = settings
        self._outbox = outbox_key(worker_name)
        self._in_flight = f"cw:inflight:{worker_name}"
        self._claimed_at = f"cw:inflight:{worker_name}:at"
        self._send = send
        self._find_published = find_published
        self._claim = client.register_script(_CLAIM)
        self._lock = asyncio.Lock()

    async def publish(self) -> int:
        """Publish everything queued; returns the number of messages produced."""
        async with self._lock:
            produced = await self._resume_in_flight()
            while True:
                claimed = int(await self._claim(
                    keys=[self._outbox, self._in_flight, self._claimed_at],
                    args=[CHUNK, int(time.time() * 1000)],
                ))
                if claimed <= 0:
                    return produced
                produced += await self._produce(await self._in_flight_alerts())

    async def _in_flight_alerts(self) -> list[str]:
        return [str(alert) for alert in await self._client.lrange(self._in_flight, 0, -1)]

    async def _resume_in_flight(self) -> int:
        """Send what a previous attempt may not have sent, skipping what reached the topic."""
        pending = await self._in_flight_alerts()
        if not pending:
            return 0
        claimed_at = int(await self._client.get(self._claimed_at) or 0)
        since = max(0, claimed_at - CLOCK_SLACK_MILLISECONDS)
        sent = await asyncio.get_running_loop().run_in_executor(
            None, self._find_published, self._settings, since
        )
        unsent = [alert for alert in pending if json.loads(alert)["alert_id"] not in sent]
        metrics.ALERTS_RECOVERED_AS_SENT.inc(len(pending) - len(unsent))
        log.info("resuming %d in-flight alerts: %d already on %s, sending %d",
                 len(pending), len(pending) - len(unsent), CHURN_ALERTS, len(unsent))
        return await self._produce(unsent, also_recorded=pending)

    async def _produce(self, alerts: list[str], also_recorded: list[str] | None = None) -> int:
        """Produce, wait for every acknowledgement, then record and clear the in-flight list."""
        await asyncio.gather(*(
            self._send(json.loads(alert)["customer_id"].encode(), alert.encode())
            for alert in alerts
        ))
        recorded = alerts if also_recorded is None else also_recorded
        async with self._client.pipeline(transaction=True) as pipe:
            for alert in recorded:
                published = json.loads(alert)["published_at"]
                pipe.zadd(RECENT_ALERTS, {alert: _epoch_ms(published)})
            pipe.zremrangebyrank(RECENT_ALERTS, 0, -RECENT_ALERTS_KEPT - 1)
            pipe.delete(self._in_flight, self._claimed_at)
            await pipe.execute()
        metrics.ALERTS_PUBLISHED.inc(len(alerts))
        return len(alerts)


def _epoch_ms(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp() * 1000)
