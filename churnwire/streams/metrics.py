"""Prometheus metrics of the stream worker (served on its own /metrics port)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "churnwire_stream_events",
    "Change and web events taken from Kafka, by topic and outcome "
    "(applied, duplicate, tombstone, dead_letter)",
    ["topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "churnwire_dead_letters", "Events sent to the dead-letter topic, by source topic", ["topic"]
)
SCHEMA_DRIFT = Counter(
    "churnwire_schema_drift_columns",
    "Events carrying columns the worker does not know (tolerated), by topic and column",
    ["topic", "column"],
)
STATE_UPDATE_SECONDS = Histogram(
    "churnwire_state_update_seconds",
    "Time to apply one batch of changes to Redis (one pipelined round trip)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
BATCH_SIZE = Histogram(
    "churnwire_stream_batch_size",
    "Events per batch taken from a stream",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
)
CONSUMER_LAG = Gauge(
    "churnwire_consumer_lag", "Messages not yet committed by the worker group, by topic", ["topic"]
)
WATERMARK_SECONDS = Gauge(
    "churnwire_watermark_seconds", "Latest order event time seen (epoch seconds)"
)
