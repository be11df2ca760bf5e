"""Consumer lag of the worker group, read from Kafka without joining the group."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from churnwire.config import Settings
from churnwire.kafka_client import confluent_config


def consumer_lag(settings: Settings, group: str, topics: list[str]) -> dict[str, int]:
    """Per topic: messages after the group's committed offsets (all of them if none)."""
    consumer = Consumer(
        confluent_config(settings, **{"group.id": group, "enable.auto.commit": False})
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in metadata.topics
            for partition in metadata.topics[topic].partitions
        ]
        committed = consumer.committed(partitions, timeout=10) if partitions else []
        lag = dict.fromkeys(topics, 0)
        for position in committed:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(position.topic, position.partition), timeout=10
            )
            start = position.offset if position.offset >= 0 else low
            lag[position.topic] += max(high - start, 0)
        return lag
    finally:
        consumer.close()
