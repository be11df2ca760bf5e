"""Helpers of the insight worker tests: worker processes of their own, alerts, and waiting.

Each worker runs ``churnwire insights`` as a real process with its own consumer group,
metrics port and MongoDB database, against the session stack's Kafka, Redis, PostgreSQL,
model server and MongoDB-wire server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Consumer, Producer, TopicPartition
from pymongo import MongoClient

from churnwire.config import Settings
from churnwire.embedded.insights import liveness_file
from churnwire.kafka_client import confluent_config
from churnwire.topics import CHURN_ALERTS, CUSTOMER_INSIGHTS

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something other than None (fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


@dataclass
class WorkerProcess:
    """One ``churnwire insights`` process and what it writes to."""

    settings: Settings
    name: str
    metrics_port: int
    env: dict[str, str]
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    mongo: MongoClient = field(init=False)  # type: ignore[type-arg]

    def __post_init__(self) -> None:
        self.mongo = MongoClient(self.settings.insight.mongo_url, serverSelectionTimeoutMS=5000)

    @property
    def database(self) -> str:
        """The MongoDB database this worker writes."""
        return self.env["CHURNWIRE_MONGO_DATABASE"]

    def start(self) -> None:
        """Start the process and wait until it has joined its group."""
        alive = liveness_file(self.settings.home, self.env["CHURNWIRE_INSIGHTS_GROUP"])
        alive.unlink(missing_ok=True)
        with open(self.log_file, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "churnwire", "insights"],
                env={**os.environ, **self.env}, stdout=output, stderr=subprocess.STDOUT,
            )
        wait_for(lambda: True if alive.exists() else self._still_running(), 240,
                 f"insight worker {self.name} to join its group")

    def _still_running(self) -> None:
        assert self.process is not None and self.process.poll() is None, (
            self.log_file.read_text()[-3000:])

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # it finishes the alert in hand (a model call) first
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.mongo.close()

    def insights(self, alert_id: str) -> list[dict[str, Any]]:
        """Every stored insight of an alert."""
        return list(self.mongo[self.database]["insights"].find({"alert_id": alert_id},
                                                                 {"_id": False}))

    def wait_insight(self, alert_id: str, timeout: float = 700) -> dict[str, Any]:
        """The insight of an alert once it is stored and published."""
        def stored() -> dict[str, Any] | None:
            self._still_running()
            found = self.insights(alert_id)
            return found[0] if found and found[0].get("published") else None
        return wait_for(stored, timeout, f"the insight of {alert_id}")

    def stored(self) -> list[dict[str, Any]]:
        """Every insight this worker stored (its database is its own)."""
        return list(self.mongo[self.database]["insights"].find({}, {"_id": False}))

    def metrics_matching_the_store(self, timeout: float = 60) -> str:
        """The /metrics text once its insight counts agree with what the worker stored.

        Besides the alerts a test publishes, the stack's stream worker may raise real alerts
        for the test's customers, which this worker also handles: counts are compared with
        the store rather than with a number fixed in the test.
        """
        def agreeing() -> str | None:
            text, stored = self.metrics(), self.stored()
            expected = {
                'churnwire_insights_total{generator="model"}':
                    sum(1 for i in stored if i["generator"] == "model"),
                'churnwire_insights_total{generator="rules"}':
                    sum(1 for i in stored if i["generator"] == "rules"),
                "churnwire_insight_seconds_count": len(stored),
                "churnwire_insight_tokens_total": sum(i["tokens"]["total"] for i in stored),
            }
            agree = all(metric_value(text, name) == value for name, value in expected.items())
            return text if agree else None
        return wait_for(agreeing, timeout, "the worker's metrics to match its stored insights")

    def metrics(self) -> str:
        """The worker's /metrics text."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return str(reply.read().decode())


def metric_value(text: str, name: str) -> float:
    """The value of one sample line (``name`` includes its labels, if any)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def alert_message(customer_id: str, number: int, drivers: list[tuple[str, float, float]],
                  probability: float = 0.9) -> dict[str, Any]:
    """A ``churn_risk`` alert as the stream worker publishes it (docs/alerts.md)."""
    return {
        "alert_id": f"{customer_id}:{number}", "type": "churn_risk", "customer_id": customer_id,
        "probability": probability, "previous_probability": 0.5, "threshold": 0.8,
        "risk_band": "high", "model_version": "test", "variant": "champion",
        "top_features": [{"feature": f, "value": v, "contribution": c} for f, v, c in drivers],
        "event_time": "1998-01-15T00:00:00+00:00",
        "published_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def publish_alert(settings: Settings, alert: dict[str, Any]) -> None:
    """Produce an alert to ``churn-alerts`` and wait for the acknowledgement."""
    producer = Producer(confluent_config(settings, **{"acks": "all"}))
    producer.produce(CHURN_ALERTS, json.dumps(alert).encode(),
                     key=str(alert["customer_id"]).encode())
    assert producer.flush(30) == 0


def published_insights(settings: Settings, alert_id: str, created_at: str,
                       timeout: float = 10) -> int:
    """How many messages on ``customer-insights`` carry this insight (alert id and creation
    time: the session stack's own worker publishes an insight of its own for the alert)."""
    consumer = Consumer(confluent_config(settings, **{"group.id": f"t-{time.time_ns()}",
                                                      "enable.auto.commit": False}))
    try:
        metadata = consumer.list_topics(CUSTOMER_INSIGHTS, timeout=10)
        partitions = [TopicPartition(CUSTOMER_INSIGHTS, p, 0)
                      for p in metadata.topics[CUSTOMER_INSIGHTS].partitions]
        consumer.assign(partitions)
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1]
                for p in partitions}
        done: set[int] = {p for p, end in ends.items() if end == 0}
        found, deadline = 0, time.monotonic() + timeout
        while len(done) < len(ends) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            document = json.loads(message.value())
            if document.get("alert_id") == alert_id and document.get("created_at") == created_at:
                found += 1
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
        return found
    finally:
        consumer.close()
