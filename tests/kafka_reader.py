"""Reads what a test caused on Kafka topics: only messages written after the reader was made."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from churnwire.config import Settings
from churnwire.kafka_client import confluent_config


@dataclass(frozen=True)
class Record:
    """One Kafka message, decoded when it is JSON."""

    topic: str
    partition: int
    offset: int
    key: Any
    value: Any

    @property
    def op(self) -> str | None:
        """The Debezium operation of a change event, None for a tombstone."""
        return None if self.value is None else self.value.get("op")


def _decode(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class TopicReader:
    """Starts at the current end of each partition of the given topics."""

    def __init__(self, settings: Settings, topics: list[str]) -> None:
        self._consumer = Consumer(
            confluent_config(settings, **{"group.id": "churnwire-tests", "enable.auto.commit": False})
        )
        metadata = self._consumer.list_topics(timeout=10)
        assignment = []
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                assignment.append(TopicPartition(topic, partition, high))
        self._consumer.assign(assignment)
        self.records: list[Record] = []

    def collect(
        self, done: Callable[[list[Record]], bool], timeout: float = 60.0
    ) -> list[Record]:
        """Poll until ``done(records)`` holds; fail with what arrived after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s with {len(self.records)} records"
                )
            for message in self._consumer.consume(num_messages=1000, timeout=0.5):
                if message.error():
                    continue
                self.records.append(
                    Record(
                        topic=message.topic(),
                        partition=message.partition(),
                        offset=message.offset(),
                        key=_decode(message.key()),
                        value=_decode(message.value()),
                    )
                )
        return self.records

    def close(self) -> None:
        """Leave the topics."""
        self._consumer.close()
