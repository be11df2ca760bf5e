"""Publishing insights to the ``customer-insights`` topic, keyed by customer id."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiokafka import AIOKafkaProducer

from churnwire.config import Settings
from churnwire.kafka_client import aiokafka_config
from churnwire.topics import CUSTOMER_INSIGHTS

log = logging.getLogger(__name__)


class InsightPublisher:
    """An idempotent producer; ``publish`` returns once the broker acknowledged (acks=all)."""

    def __init__(self, settings: Settings) -> None:
        self._producer = AIOKafkaProducer(**aiokafka_config(settings), acks="all",
                                          enable_idempotence=True)

    async def start(self) -> None:
        """Connect to the cluster."""
        await self._producer.start()

    async def publish(self, document: dict[str, Any]) -> None:
        """Send one insight document and wait for its acknowledgement."""
        value = json.dumps(document, separators=(",", ":"), default=str).encode()
        await self._producer.send_and_wait(
            CUSTOMER_INSIGHTS, value, key=str(document["customer_id"]).encode()
        )

    async def stop(self) -> None:
        """Flush and disconnect."""
        await self._producer.stop()
