"""Web events for the offline builder, read from the ``web-events`` topic, their system of record.

Clickstream events never reach PostgreSQL: the topic is the only complete record of them
(ADR 0014). The offline builder reads every partition from its first offset up to the end
offsets taken when it starts, validates each message exactly as the worker does, skips what
the worker dead-letters, and keeps the first event of each id per customer, as the worker's
``HSETNX`` does.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from confluent_kafka import Consumer, TopicPartition

from churnwire.config import Settings
from churnwire.kafka_client import confluent_config
from churnwire.state.features import WebFact
from churnwire.streams.changes import MalformedEvent
from churnwire.streams.web_events import decode_web_event
from churnwire.topics import WEB_EVENTS

log = logging.getLogger(__name__)


def _assign_from_start(consumer: Consumer, topic: str) -> dict[int, int]:
    """Assign every partition at its first offset; return the end offset of each non-empty one."""
    metadata = consumer.list_topics(topic, timeout=10)
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        return {}
    ends: dict[int, int] = {}
    assignment = []
    for partition in metadata.topics[topic].partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high > low:
            ends[partition] = high
            assignment.append(TopicPartition(topic, partition, low))
    consumer.assign(assignment)
    return ends


def read_web_log(
    settings: Settings, as_of: int | None = None, timeout: float = 300.0
) -> dict[str, list[WebFact]]:
    """Every valid web event on the topic (up to ``as_of`` when given), by customer id."""
    consumer = Consumer(
        confluent_config(
            settings, **{"group.id": "churnwire-offline-web", "enable.auto.commit": False}
        )
    )
    facts: dict[str, dict[str, WebFact]] = defaultdict(dict)
    skipped = 0
    try:
        ends = _assign_from_start(consumer, WEB_EVENTS)
        pending = set(ends)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{WEB_EVENTS} not read to its end within {timeout:.0f} s")
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                partition, offset, value = message.partition(), message.offset(), message.value()
                if message.error() or partition is None or offset is None:
                    continue
                if offset >= ends[partition]:
                    continue  # written after the build started
                if offset == ends[partition] - 1:
                    pending.discard(partition)
                if value is None:
                    continue  # a tombstone: nothing to fold
                try:
                    event = decode_web_event(value)
                except MalformedEvent:
                    skipped += 1
                    continue
                if as_of is None or event.occurred_at <= as_of:
                    facts[event.customer_id].setdefault(
                        event.event_id, WebFact(event.event_id, event.occurred_at, event.type)
                    )
    finally:
        consumer.close()
    log.info("read %d web events of %d customers from %s (%d malformed skipped)",
             sum(len(events) for events in facts.values()), len(facts), WEB_EVENTS, skipped)
    return {customer_id: list(events.values()) for customer_id, events in facts.items()}
