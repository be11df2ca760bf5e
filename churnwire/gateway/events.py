"""Clickstream intake: validated events produced to ``web-events`` with ``acks=all``.

The producer connects in the background, so the gateway serves lookups while Kafka is down;
``POST /v1/events`` answers 503 until it is connected.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from churnwire.config import Settings
from churnwire.gateway.errors import ApiError
from churnwire.kafka_client import aiokafka_config
from churnwire.topics import WEB_EVENTS

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
SEND_TIMEOUT_SECONDS = 10.0


class EventPublisher:
    """Produces web events keyed by customer id and waits for every acknowledgement."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    @property
    def connected(self) -> bool:
        """Whether the producer has started."""
        return self._producer is not None

    async def connect_forever(self) -> None:
        """Start the producer, retrying until the broker answers (run as a task)."""
        while self._producer is None:
            producer = AIOKafkaProducer(
                **aiokafka_config(self._settings), acks="all", linger_ms=0,
                request_timeout_ms=int(SEND_TIMEOUT_SECONDS * 1000),
            )
            try:
                await producer.start()
            except (KafkaError, OSError) as error:
                log.warning("event producer not connected (%s); retrying", error)
                await producer.stop()
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._producer = producer
            log.info("event producer connected to %s", self._settings.kafka_bootstrap)

    async def close(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def check(self, timeout: float = 2.0) -> str | None:
        """None when the cluster answers a metadata request now, else why it does not."""
        if self._producer is None:
            return "producer not connected"
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout)
        except (TimeoutError, KafkaError, OSError) as error:
            return f"{type(error).__name__}: {error}"
        return None

    async def publish(self, events: list[dict[str, str]]) -> None:
        """Produce every event and wait until the broker acknowledged all of them."""
        if self._producer is None:
            raise ApiError(503, "the event log (Kafka) is not reachable; retry later")
        try:
            sent = [
                await self._producer.send(
                    WEB_EVENTS,
                    key=event["customer_id"].encode(),
                    value=json.dumps(event, separators=(",", ":")).encode(),
                )
                for event in events
            ]
            await asyncio.wait_for(asyncio.gather(*sent), SEND_TIMEOUT_SECONDS)
        except (TimeoutError, KafkaError) as error:
            log.warning("producing %d web events failed: %s", len(events), error)
            raise ApiError(503, "the event log (Kafka) did not acknowledge the events; "
                                "retry with the same event ids") from None
