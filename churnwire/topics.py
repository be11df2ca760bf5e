"""The Kafka topics churnwire reads and writes, created up front with explicit partition counts.

Consumers such as Faust do not create source topics with the right partition count, so every
topic is created here before any process uses it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, NewTopic

from churnwire.config import Settings
from churnwire.kafka_client import confluent_config

log = logging.getLogger(__name__)

WEB_EVENTS = "web-events"
DEAD_LETTER = "churnwire.dlq"
CHURN_ALERTS = "churn-alerts"
CUSTOMER_INSIGHTS = "customer-insights"


@dataclass(frozen=True)
class TopicSpec:
    """A topic and how it is laid out."""

    name: str
    partitions: int
    compacted: bool = False
    # The topic is a system of record (web-events, ADR 0014): never delete by age.
    retain_forever: bool = False

    @property
    def config(self) -> dict[str, str]:
        """Topic-level settings it is created with."""
        config = {"cleanup.policy": "compact"} if self.compacted else {}
        if self.retain_forever:
            config["retention.ms"] = "-1"
        return config


def cdc_topics(settings: Settings) -> list[TopicSpec]:
    """The topics the CDC process writes: one per captured table, heartbeats and fences."""
    partitions = settings.topic_partitions
    return [
        TopicSpec(settings.customers_topic, partitions),
        TopicSpec(settings.orders_topic, partitions),
        TopicSpec(settings.heartbeat_topic, 1),
        TopicSpec(settings.fence_topic, 1),
    ]


def all_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic of the pipeline."""
    partitions = settings.topic_partitions
    return [
        *cdc_topics(settings),
        TopicSpec(WEB_EVENTS, partitions, retain_forever=True),
        TopicSpec(DEAD_LETTER, 1),
        TopicSpec(CHURN_ALERTS, partitions),
        TopicSpec(CUSTOMER_INSIGHTS, partitions),
    ]


def ensure_topics(settings: Settings, specs: list[TopicSpec], timeout: float = 30.0) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AdminClient(confluent_config(settings))
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [spec for spec in specs if spec.name not in existing]
    if not missing:
        return
    new_topics = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=-1,
            config=spec.config,
        )
        for spec in missing
    ]
    for name, future in admin.create_topics(new_topics, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
        except Exception as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise
        log.info("created topic %s", name)


def topic_message_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    """Messages held per topic (sum of high watermarks minus low watermarks)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(confluent_config(settings, **{"group.id": "churnwire-inspect"}))
    try:
        metadata = consumer.list_topics(timeout=10)
        counts: dict[str, int] = {}
        for name in names:
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None:
                counts[name] = 0
                continue
            total = 0
            for partition in topic.partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(name, partition), timeout=10
                )
                total += high - low
            counts[name] = total
        return counts
    finally:
        consumer.close()
