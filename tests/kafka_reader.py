"""Reads what a test caused on Kafka topics: only messages written after the reader was made."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from churnwire.config import Settings
from churnwire.kafka_tail import TopicTail


@dataclass(frozen=True)
class Record:
    """One Kafka message, decoded when it is JSON."""

    topic: str
    partition: int
    offset: int
    key: Any
    value: Any
    headers: dict[str, bytes]

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
    """A TopicTail that decodes what it reads and fails the test on a timeout."""

    def __init__(self, settings: Settings, topics: list[str]) -> None:
        self._tail = TopicTail(settings, topics, group="churnwire-tests")
        self.records: list[Record] = []

    def collect(self, done: Callable[[list[Record]], bool], timeout: float = 60.0) -> list[Record]:
        """Poll until ``done(records)`` holds; fail with what arrived after ``timeout``."""

        def decoded_done(_: object) -> bool:
            for message in self._tail.messages[len(self.records):]:
                self.records.append(
                    Record(
                        topic=message.topic(),
                        partition=message.partition(),
                        offset=message.offset(),
                        key=_decode(message.key()),
                        value=_decode(message.value()),
                        headers=dict(message.headers() or []),
                    )
                )
            return done(self.records)

        if not self._tail.wait_for(decoded_done, timeout):
            count = len(self.records)
            raise AssertionError(f"timed out after {timeout:.0f} s with {count} records")
        return self.records

    def close(self) -> None:
        """Leave the topics."""
        self._tail.close()
