"""Reads the messages written to topics from now on: the tail every partition has at creation."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, Message, TopicPartition

from churnwire.config import Settings
from churnwire.kafka_client import confluent_config


class TopicTail:
    """Assigned to every partition of the topics at their current end offsets."""

    def __init__(
        self, settings: Settings, topics: list[str], group: str = "churnwire-tail"
    ) -> None:
        self._consumer = Consumer(
            confluent_config(settings, **{"group.id": group, "enable.auto.commit": False})
        )
        metadata = self._consumer.list_topics(timeout=10)
        assignment = []
        for topic in topics:
            if topic not in metadata.topics:
                raise KeyError(f"topic {topic} does not exist")
            for partition in metadata.topics[topic].partitions:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                assignment.append(TopicPartition(topic, partition, high))
        self._consumer.assign(assignment)
        self.messages: list[Message] = []

    def poll(self, timeout: float = 0.5) -> list[Message]:
        """Fetch what has arrived (errors dropped); also kept in ``messages``."""
        batch = [m for m in self._consumer.consume(num_messages=1000, timeout=timeout)
                 if not m.error()]
        self.messages.extend(batch)
        return batch

    def wait_for(self, done: Callable[[list[Message]], bool], timeout: float) -> bool:
        """Poll until ``done(messages)`` holds; False if ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while not done(self.messages):
            if time.monotonic() > deadline:
                return False
            self.poll()
        return True

    def close(self) -> None:
        """Leave the topics."""
        self._consumer.close()
