"""``churnwire status --wait-idle``: returns once every committed change has reached Redis.

CDC is caught up when a fence, a logical decoding message written to the WAL now, has arrived
in Kafka: the engine forwards in WAL order, so everything committed before it is there too.
The worker is caught up when its group's committed offsets reach the end of every source topic.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from dataclasses import dataclass

import asyncpg
from confluent_kafka import Message

from churnwire.config import Settings
from churnwire.kafka_tail import TopicTail
from churnwire.streams.lag import consumer_lag
from churnwire.topics import WEB_EVENTS

FENCE_PREFIX = "churnwire.fence"


@dataclass(frozen=True)
class IdleReport:
    """Whether the pipeline drained in time, and what was still behind if not."""

    idle: bool
    seconds: float
    waiting_for: str = ""


async def _emit_fence(postgres_url: str, token: str) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(
            "SELECT pg_logical_emit_message(true, $1, $2)", FENCE_PREFIX, token
        )
    finally:
        await connection.close()


def _carries(message: Message, token: str) -> bool:
    try:
        event = json.loads(message.value() or b"null")
        content = event["message"]["content"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(base64.b64decode(content) == token.encode())


def wait_idle(settings: Settings, timeout: float) -> IdleReport:
    """Block until CDC and the worker have caught up, or ``timeout`` seconds pass."""
    started = time.monotonic()
    token = uuid.uuid4().hex
    tail = TopicTail(settings, [settings.fence_topic])
    try:
        asyncio.run(_emit_fence(settings.postgres_url, token))
        arrived = tail.wait_for(lambda ms: any(_carries(m, token) for m in ms), timeout)
    finally:
        tail.close()
    if not arrived:
        return IdleReport(False, time.monotonic() - started, "CDC (fence not forwarded)")

    topics = [settings.orders_topic, settings.customers_topic, WEB_EVENTS]
    lag: dict[str, int] = {}
    while time.monotonic() - started < timeout:
        lag = consumer_lag(settings, settings.worker_group, topics)
        if not any(lag.values()):
            return IdleReport(True, time.monotonic() - started)
        time.sleep(0.5)
    behind = ", ".join(f"{topic}: {count}" for topic, count in lag.items() if count)
    return IdleReport(False, time.monotonic() - started, f"worker lag ({behind})")
