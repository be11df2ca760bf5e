"""Dead letters: an event the worker cannot apply, kept whole with where it came from and why."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class SourceMessage:
    """A Kafka message as the worker received it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class DeadLetter:
    """The original bytes, the source coordinates and the reason."""

    source: SourceMessage
    reason: str

    def to_json(self) -> bytes:
        """The record written to the dead-letter topic."""
        document: dict[str, Any] = {
            "reason": self.reason,
            "topic": self.source.topic,
            "partition": self.source.partition,
            "offset": self.source.offset,
            "key_base64": _b64(self.source.key),
            "value_base64": _b64(self.source.value),
            "failed_at_ms": int(time.time() * 1000),
        }
        return json.dumps(document).encode()

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers so a consumer can route without parsing the body."""
        return [
            ("churnwire.reason", self.reason.encode()[:512]),
            ("churnwire.source", f"{self.source.topic}/{self.source.partition}/"
                                 f"{self.source.offset}".encode()),
        ]


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()


class DeadLetterSink(Protocol):
    """Where dead letters go; ``send`` returns once the broker has them."""

    async def send(self, letter: DeadLetter) -> None:
        """Deliver one dead letter durably."""
