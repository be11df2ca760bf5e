"""Forwards each Debezium batch to Kafka and returns only once every record is acknowledged.

The engine commits its offsets for a batch only after the handler returns, and an exception
stops the engine before it commits. Flushing the producer inside the handler therefore makes
the path at-least-once: a crash re-sends the batch, it never drops it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Counter as MetricCounter
from prometheus_client import Histogram
from pydbzengine import BasePythonChangeHandler, ChangeEvent

log = logging.getLogger(__name__)

EVENTS_FORWARDED = MetricCounter(
    "churnwire_cdc_events_forwarded", "Change events acknowledged by Kafka", ["topic"]
)
BATCH_SECONDS = Histogram(
    "churnwire_cdc_batch_seconds",
    "Time to produce and flush one Debezium batch",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class DeliveryFailed(RuntimeError):
    """Kafka refused a record; the batch must not be acknowledged to Debezium."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class KafkaForwarder(BasePythonChangeHandler):
    """Debezium change handler that produces every record to the topic Debezium named."""

    def __init__(self, producer: Producer, flush_timeout: float = 120.0) -> None:
        self._producer = producer
        self._flush_timeout = flush_timeout
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self.forwarded: Counter[str] = Counter()
        self.batches = 0
        self.last_batch_at: float | None = None

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error}")

    def handleJsonBatch(self, records: Sequence[ChangeEvent]) -> None:
        """Produce the batch, flush, and raise if any record was not acknowledged."""
        started = time.perf_counter()
        self._failures.clear()
        batch_topics: Counter[str] = Counter()
        for record in records:
            topic = str(record.destination())
            self._produce(topic, _text(record.key()), _text(record.value()))
            batch_topics[topic] += 1
        self._flush()
        if self._failures:
            failed = len(self._failures)
            raise DeliveryFailed(f"{failed} records not delivered: {self._failures[:3]}")

        with self._lock:
            self.forwarded.update(batch_topics)
            self.batches += 1
            self.last_batch_at = time.time()
        for topic, count in batch_topics.items():
            EVENTS_FORWARDED.labels(topic=topic).inc(count)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        log.debug("forwarded batch of %d records", len(records))

    def _produce(self, topic: str, key: str | None, value: str | None) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
                return
            except BufferError:
                # The local queue is full: let deliveries drain, then try the same record again.
                self._producer.poll(0.1)

    def _flush(self) -> None:
        deadline = time.monotonic() + self._flush_timeout
        while self._producer.flush(1.0) > 0:
            if time.monotonic() > deadline:
                raise DeliveryFailed(
                    f"{len(self._producer)} records still unacknowledged after "
                    f"{self._flush_timeout:.0f} s"
                )
            log.warning("waiting for Kafka to acknowledge %d records", len(self._producer))

    def snapshot(self) -> dict[str, Any]:
        """Counts for the status file."""
        with self._lock:
            return {
                "forwarded": dict(self.forwarded),
                "batches": self.batches,
                "last_batch_at": self.last_batch_at,
            }
