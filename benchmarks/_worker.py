"""Timing one stream worker process over change events already waiting in Kafka.

Shared by the benchmarks that measure the worker (``stream.py``, ``scoring_worker.py``): a
fresh worker process with a consumer group of its own folds every waiting event into an
emptied Redis, and its own ``/metrics`` tells when it has applied them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import redis
from _stack import process_cpu_seconds

from churnwire.embedded.stack import Stack
from churnwire.topics import topic_message_counts

BENCH_WORKER_TIMEOUT = 900.0


def metric_total(port: int, name: str, **labels: str) -> float:
    """Sum of a metric's samples on a process's /metrics that carry ``labels`` (0 if down)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return 0.0
    total = 0.0
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.split("{", 1)[0] == name and all(label in sample for label in wanted):
            total += float(value)
    return total


def wait_for_kafka(stack: Stack, rows: Mapping[str, int], timeout: float = 600.0) -> None:
    """Block until every topic of ``rows`` holds at least that many messages."""
    deadline = time.monotonic() + timeout
    while True:
        counts = topic_message_counts(stack.settings, list(rows))
        if all(counts[topic] >= wanted for topic, wanted in rows.items()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"CDC did not forward every row: {counts} of {dict(rows)}")
        time.sleep(1.0)


@contextmanager
def running_worker(
    stack: Stack, name: str, metrics_port: int, environment: Mapping[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process in consumer group ``bench-<name>``, stopped (SIGTERM) on exit."""
    env = {
        **os.environ,
        **environment,
        "CHURNWIRE_WORKER_GROUP": f"bench-{name}",
        "CHURNWIRE_WORKER_METRICS_PORT": str(metrics_port),
    }
    log_file = stack.settings.home / "logs" / f"bench-worker-{name}.log"
    with open(log_file, "w") as log_stream:
        worker = subprocess.Popen(
            [sys.executable, "-m", "churnwire", "worker", "--name", f"bench-{name}"],
            env=env,
            stdout=log_stream,
            stderr=subprocess.STDOUT,
        )
    try:
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


def time_worker(
    stack: Stack, name: str, events: int, metrics_port: int, environment: Mapping[str, str]
) -> dict[str, Any]:
    """Run a fresh worker (own group, empty Redis) until it has applied ``events`` events.

    The rate is taken from its first applied event to its last, so process start-up and the
    group join are left out (they are reported separately); so is the CPU time it used.
    """
    client = redis.Redis.from_url(stack.settings.redis_url)
    client.flushdb()
    client.close()
    started = time.monotonic()
    first_applied = None
    cpu_at_first = 0.0
    with running_worker(stack, name, metrics_port, environment) as worker:
        while True:
            applied = metric_total(metrics_port, "churnwire_stream_events_total", outcome="applied")
            now = time.monotonic()
            if applied and first_applied is None:
                first_applied, cpu_at_first = now, process_cpu_seconds(worker.pid)
            if applied >= events:
                break
            if worker.poll() is not None:
                raise RuntimeError(f"worker {name} exited with {worker.returncode}")
            if now - started > BENCH_WORKER_TIMEOUT:
                raise RuntimeError(f"worker applied {applied} of {events} events in time")
            time.sleep(0.1)
        cpu_seconds = process_cpu_seconds(worker.pid) - cpu_at_first
        scored = metric_total(metrics_port, "churnwire_scores_total", variant="champion")
    assert first_applied is not None
    busy = now - first_applied
    return {
        "events": events,
        "seconds_first_to_last_event": round(busy, 2),
        "seconds_from_process_start": round(now - started, 2),
        "events_per_second": round(events / busy, 1) if busy else None,
        "worker_cpu_seconds": round(cpu_seconds, 2),
        # Events per second of the worker's own CPU time: steadier than wall-clock rates on a
        # shared machine, where the worker does not get a whole core.
        "events_per_cpu_second": round(events / cpu_seconds, 1) if cpu_seconds else None,
        "customers_scored": int(scored),
    }
