"""Worker throughput with inline scoring on against scoring off, on the real CDNOW log.

Starts a private embedded stack under ``.churnwire-bench-scoring/``, loads all of CDNOW
(23,570 customers, 69,659 orders) through Debezium into Kafka with the stack's worker stopped,
trains a model, then times a fresh worker process (a consumer group of its own, Redis emptied)
folding every change event, alternately with ``CHURNWIRE_SCORING=off`` and ``on``. With
scoring on, the worker also scores every touched customer after each batch, runs the
inactivity sweep and learns outcomes: everything it does in production.

Usage: ``.venv/bin/python benchmarks/scoring_worker.py [--repeats N]``. The figures are
written to the ``worker`` section of ``benchmarks/results/scoring.json`` (other sections of
that file are kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from statistics import median
from typing import Any

import redis
from _stack import REPO, RESULTS, isolate_environment, machine_info, private_stack

from churnwire.data.cdnow import load_cdnow
from churnwire.embedded.stack import Stack
from churnwire.models.training import train_model
from churnwire.topics import topic_message_counts

log = logging.getLogger("benchmarks.scoring_worker")

BENCH_ENVIRONMENT = {
    # The insight worker and its model server are not part of this measurement.
    "CHURNWIRE_INSIGHTS": "off",
    "CHURNWIRE_HOME": str(REPO / ".churnwire-bench-scoring"),
    "CHURNWIRE_POSTGRES_PORT": "54389",
    "CHURNWIRE_REDIS_PORT": "63796",
    "CHURNWIRE_KAFKA_PORT": "19098",
    "CHURNWIRE_CDC_METRICS_PORT": "9516",
    "CHURNWIRE_WORKER_METRICS_PORT": "9517",
    "CHURNWIRE_GATEWAY_PORT": "8196",
}
BENCH_WORKER_METRICS_PORT = 9518
TRAINING_CUTOFF = date(1997, 9, 30)


def _metric_total(port: int, name: str, **labels: str) -> float:
    """Sum of a counter's samples on a worker's /metrics that carry ``labels``."""
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


def _wait_for_kafka(stack: Stack, rows: dict[str, int], timeout: float = 600.0) -> None:
    settings = stack.settings
    deadline = time.monotonic() + timeout
    while True:
        counts = topic_message_counts(settings, list(rows))
        if all(counts[topic] >= wanted for topic, wanted in rows.items()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"CDC did not forward every row: {counts} of {rows}")
        time.sleep(1.0)


def _one_run(stack: Stack, scoring: str, run: int, events: int) -> dict[str, Any]:
    """Time a fresh worker (own group, empty state) folding ``events`` change events."""
    settings = stack.settings
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    client.close()
    env = {
        **os.environ,
        "CHURNWIRE_SCORING": scoring,
        "CHURNWIRE_WORKER_GROUP": f"bench-{scoring}-{run}",
        "CHURNWIRE_WORKER_METRICS_PORT": str(BENCH_WORKER_METRICS_PORT),
    }
    log_file = settings.home / "logs" / f"bench-worker-{scoring}-{run}.log"
    started = time.monotonic()
    with open(log_file, "w") as log_stream:
        worker = subprocess.Popen(
            [sys.executable, "-m", "churnwire", "worker", "--name", f"bench-{scoring}-{run}"],
            env=env, stdout=log_stream, stderr=subprocess.STDOUT,
        )
    first_applied = None
    try:
        while True:
            applied = _metric_total(BENCH_WORKER_METRICS_PORT, "churnwire_stream_events_total",
                                    outcome="applied")
            now = time.monotonic()
            if applied and first_applied is None:
                first_applied = now
            if applied >= events:
                break
            if now - started > 900:
                raise RuntimeError(f"worker applied {applied} of {events} events in 900 s")
            time.sleep(0.1)
        scored = _metric_total(BENCH_WORKER_METRICS_PORT, "churnwire_scores_total",
                               variant="champion")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert first_applied is not None
    busy = now - first_applied
    return {
        "scoring": scoring,
        "events": events,
        "seconds_first_to_last_event": round(busy, 2),
        "seconds_from_process_start": round(now - started, 2),
        "events_per_second": round(events / busy, 1) if busy else None,
        "customers_scored": int(scored),
    }


def run(repeats: int) -> dict[str, Any]:
    """Load CDNOW, train, then alternate scoring off and on."""
    isolate_environment(BENCH_ENVIRONMENT)
    with private_stack() as stack:
        settings = stack.settings
        stack.worker.stop()
        report = load_cdnow(settings.postgres_url, progress=False)
        log.info("%s", report.summary())
        rows = {settings.customers_topic: 23_570, settings.orders_topic: 69_659}
        _wait_for_kafka(stack, rows)
        trained = train_model(settings, [TRAINING_CUTOFF], horizon_days=90)
        events = sum(rows.values())
        runs = [
            _one_run(stack, scoring, repeat, events)
            for repeat in range(repeats)
            for scoring in ("off", "on")
        ]
    rates = {
        mode: median(r["events_per_second"] for r in runs if r["scoring"] == mode)
        for mode in ("off", "on")
    }
    return {
        "model_version": trained.version,
        "runs": runs,
        "median_events_per_second": rates,
        "on_to_off_ratio": round(rates["on"] / rates["off"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Run, merge into scoring.json, print a line per mode."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2, help="runs per mode")
    parser.add_argument("--output", type=Path, default=RESULTS / "scoring.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    machine = machine_info(("onnxruntime", "xgboost", "river", "faust-streaming"))
    section = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": None,
        "machine": machine,
        "parameters": {"repeats": args.repeats, "data": "CDNOW, all 69,659 orders"},
        "results": run(args.repeats),
    }
    section["duration_seconds"] = round(time.monotonic() - started, 1)
    document = json.loads(args.output.read_text()) if args.output.exists() else {}
    document["worker"] = section
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    results = section["results"]
    for mode, rate in results["median_events_per_second"].items():
        print(f"worker, scoring {mode:<3}: {rate:>9,.0f} events/s (median of {args.repeats})")
    print(f"scoring on / off: {results['on_to_off_ratio']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
