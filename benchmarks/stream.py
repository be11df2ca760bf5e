"""Stream benchmark: change events folded into Redis by one worker, against raw consumption.

Starts a private embedded stack under ``.churnwire-bench-stream/``, loads a synthetic shop
(10,000 customers, 100,000 orders by default) through Debezium into Kafka with the stack's
worker stopped, then measures in one run:

* throughput: a fresh worker process (scoring off: topic to Redis state only) folding every
  waiting change event, alternated with a raw aiokafka consumer reading the same topics on the
  same broker (no decoding, no state), so the ratio is measured under the same conditions;
* memory: Redis bytes per customer after the fold (``used_memory`` delta over an emptied
  database, and ``MEMORY USAGE`` of a sample of customers' keys);
* freshness: orders committed one per transaction at a steady rate, and for each the time from
  its commit to its fact being visible in Redis, through a worker resuming the last run's
  consumer group (scoring on but no model trained: the state path alone).

Usage: ``.venv/bin/python benchmarks/stream.py [--customers N] [--orders M] [--repeats R]
[--rate 500] [--seconds 20]``. Results go to ``benchmarks/results/stream.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import redis
from _orders import commit_steadily, create_customers
from _stack import (
    RESULTS,
    bench_environment,
    isolate_environment,
    machine_info,
    percentiles_ms,
    private_stack,
)
from _worker import running_worker, time_worker, wait_for_kafka
from aiokafka import AIOKafkaConsumer, TopicPartition

from churnwire.config import Settings
from churnwire.data.synthetic import load_synthetic
from churnwire.embedded.stack import Stack
from churnwire.kafka_client import aiokafka_config
from churnwire.state.layout import CUSTOMERS_INDEX, orders_key, profile_key, score_key, web_key
from churnwire.streams.idle import wait_idle

log = logging.getLogger("benchmarks.stream")

# The insight worker and its model server are not part of this measurement.
BENCH_ENVIRONMENT = bench_environment(".churnwire-bench-stream", 70, CHURNWIRE_INSIGHTS="off")
BENCH_WORKER_METRICS_PORT = 9528
FRESHNESS_CUSTOMERS = 1_000
POLL_SECONDS = 0.002
MEMORY_SAMPLE = 500


async def _raw_consume(settings: Settings, topics: list[str], events: int) -> tuple[float, float]:
    """Wall and CPU seconds for a plain consumer to read ``events`` records from the start.

    Partitions are assigned by hand (no group join to wait for) and the clocks start at the
    assignment, so the consumer's background fetching is counted too.
    """
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=1_000,
        **aiokafka_config(settings),
    )
    await consumer.start()
    try:
        await consumer.topics()  # metadata, so the partitions are known
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in consumer.partitions_for_topic(topic) or ()
        ]
        started, cpu_started = time.monotonic(), time.process_time()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        received = 0
        while received < events:
            batches = await consumer.getmany(timeout_ms=500, max_records=1_000)
            received += sum(len(records) for records in batches.values())
            if time.monotonic() - started > 600:
                raise RuntimeError(f"raw consumer read {received} of {events} records")
        return time.monotonic() - started, time.process_time() - cpu_started
    finally:
        await consumer.stop()


def raw_consume_rate(stack: Stack, topics: list[str], events: int) -> dict[str, Any]:
    """Records per second of a raw aiokafka consumer over the same waiting events."""
    seconds, cpu = asyncio.run(_raw_consume(stack.settings, topics, events))
    return {
        "events": events,
        "seconds_from_assignment": round(seconds, 2),
        "events_per_second": round(events / seconds, 1),
        "consumer_cpu_seconds": round(cpu, 2),
        "events_per_cpu_second": round(events / cpu, 1) if cpu else None,
    }


def memory_per_customer(settings: Settings, baseline: int) -> dict[str, Any]:
    """used_memory over the emptied baseline per customer, and MEMORY USAGE of a sample."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        used = int(client.info("memory")["used_memory"])
        ids = sorted(str(member) for member in client.smembers(CUSTOMERS_INDEX))
        sample = random.Random(7).sample(ids, min(MEMORY_SAMPLE, len(ids)))
        pipe = client.pipeline(transaction=False)
        for customer_id in sample:
            for key in (
                orders_key(customer_id),
                profile_key(customer_id),
                web_key(customer_id),
                score_key(customer_id),
            ):
                pipe.memory_usage(key, samples=0)
            pipe.hlen(orders_key(customer_id))
        replies = pipe.execute()
    finally:
        client.close()
    sampled = max(len(sample), 1)
    usages = [reply or 0 for position, reply in enumerate(replies) if position % 5 != 4]
    orders = replies[4::5]
    return {
        "customers_in_state": len(ids),
        "used_memory_delta_bytes_per_customer": round((used - baseline) / max(len(ids), 1), 1),
        "memory_usage_bytes_per_customer_sampled": round(sum(usages) / sampled, 1),
        "orders_per_customer_sampled": round(sum(orders) / sampled, 2),
        "sampled_customers": len(sample),
    }


def empty_baseline(settings: Settings) -> int:
    """used_memory of the emptied database."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        client.flushdb()
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


async def _watch_orders(
    settings: Settings, committed: dict[str, float], writer: asyncio.Task[dict[str, float]]
) -> dict[str, float]:
    """Poll Redis for each committed order's fact until all are seen; return when each was."""
    client = redis.asyncio.Redis.from_url(settings.redis_url)
    seen: dict[str, float] = {}
    deadline = None
    try:
        while not writer.done() or len(seen) < len(committed):
            if writer.done():
                deadline = deadline or time.monotonic() + 120
                if time.monotonic() > deadline:
                    break
            pending = [order_id for order_id in committed if order_id not in seen]
            if pending:
                pipe = client.pipeline(transaction=False)
                for order_id in pending:
                    index = int(order_id.rsplit("-", 1)[1])
                    pipe.hexists(orders_key(f"bench-c{index % FRESHNESS_CUSTOMERS:05d}"), order_id)
                found = await pipe.execute()
                now = time.time()
                hits = zip(pending, found, strict=True)
                seen.update({order_id: now for order_id, hit in hits if hit})
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await client.aclose()
    return seen


async def _freshness(settings: Settings, rate: float, seconds: float) -> dict[str, Any]:
    committed: dict[str, float] = {}
    writer = asyncio.create_task(
        commit_steadily(
            settings.postgres_url,
            "fresh",
            rate,
            int(rate * seconds),
            2,
            FRESHNESS_CUSTOMERS,
            committed,
        )
    )
    seen = await _watch_orders(settings, committed, writer)
    await writer
    latencies = [seen[order_id] - at for order_id, at in committed.items() if order_id in seen]
    return {
        "orders_committed": len(committed),
        "orders_seen": len(seen),
        "poll_interval_ms": POLL_SECONDS * 1000,
        "commit_to_feature": percentiles_ms(latencies),
    }


def measure_freshness(stack: Stack, group_of: str, rate: float, seconds: float) -> dict[str, Any]:
    """Commit-to-feature time per order at a steady commit rate, through a worker process.

    The worker resumes the consumer group of the last throughput run (already at the end of
    the topics, its state still in Redis), so it has no backlog to fold first.
    """
    asyncio.run(create_customers(stack.settings.postgres_url, FRESHNESS_CUSTOMERS))
    settings = replace(stack.settings, worker_group=f"bench-{group_of}")
    with running_worker(stack, group_of, BENCH_WORKER_METRICS_PORT, {}):
        report = wait_idle(settings, timeout=900)
        log.info("freshness worker caught up: %s", report)
        return asyncio.run(_freshness(settings, rate, seconds))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load the shop, alternate raw and worker runs, then measure freshness."""
    isolate_environment(BENCH_ENVIRONMENT)
    with private_stack() as stack:
        settings = stack.settings
        stack.worker.stop()
        report = load_synthetic(
            settings.postgres_url, args.customers, args.orders, args.seed, progress=False
        )
        log.info("%s", report.summary())
        rows = {settings.customers_topic: args.customers, settings.orders_topic: args.orders}
        wait_for_kafka(stack, rows)
        events = sum(rows.values())
        topics = list(rows)

        raw_runs, worker_runs, memory = [], [], []
        for repeat in range(args.repeats):
            raw_runs.append(raw_consume_rate(stack, topics, events))
            baseline = empty_baseline(settings)
            worker_runs.append(
                time_worker(
                    stack,
                    f"stream-{repeat}",
                    events,
                    BENCH_WORKER_METRICS_PORT,
                    {"CHURNWIRE_SCORING": "off"},
                )
            )
            memory.append(memory_per_customer(settings, baseline))
        freshness = measure_freshness(stack, f"stream-{args.repeats - 1}", args.rate, args.seconds)

    raw_rate = median(run["events_per_second"] for run in raw_runs)
    worker_rate = median(run["events_per_second"] for run in worker_runs)
    worker_cpu_rate = median(run["events_per_cpu_second"] for run in worker_runs)
    return {
        "events": events,
        "raw_aiokafka_runs": raw_runs,
        "worker_runs": worker_runs,
        "median_raw_events_per_second": raw_rate,
        "median_worker_events_per_second": worker_rate,
        "worker_to_raw_ratio": round(worker_rate / raw_rate, 3),
        "median_worker_events_per_cpu_second": worker_cpu_rate,
        "redis_memory": memory[-1],
        "freshness": {"rate_per_second": args.rate, "seconds": args.seconds, **freshness},
    }


def report_lines(results: dict[str, Any]) -> list[str]:
    """The table printed at the end of a run."""
    memory = results["redis_memory"]
    fresh = results["freshness"]["commit_to_feature"]
    return [
        f"raw aiokafka consume : {results['median_raw_events_per_second']:>10,.0f} events/s",
        f"one worker -> Redis  : {results['median_worker_events_per_second']:>10,.0f} events/s"
        f"  (ratio {results['worker_to_raw_ratio']}), "
        f"{results['median_worker_events_per_cpu_second']:,.0f} per CPU second",
        f"Redis per customer   : {memory['used_memory_delta_bytes_per_customer']:>10,.0f} bytes"
        f" (used_memory), {memory['memory_usage_bytes_per_customer_sampled']:,.0f} bytes"
        f" (MEMORY USAGE), {memory['orders_per_customer_sampled']} orders each",
        f"commit -> feature    : p50 {fresh.get('p50_ms')} ms, p99 {fresh.get('p99_ms')} ms"
        f" at {results['freshness']['rate_per_second']:.0f} orders/s",
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write stream.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500.0, help="orders/s for freshness")
    parser.add_argument("--seconds", type=float, default=20.0, help="freshness duration")
    parser.add_argument("--output", type=Path, default=RESULTS / "stream.json")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    started = time.monotonic()
    machine = machine_info(("faust-streaming", "aiokafka", "redis", "noida-db"))
    results = run(args)
    # Kept after a failure, for its logs; a successful run leaves nothing behind.
    shutil.rmtree(BENCH_ENVIRONMENT["CHURNWIRE_HOME"], ignore_errors=True)
    document = {
        "benchmark": "stream",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(time.monotonic() - started, 1),
        "machine": {**machine, "load_average_after": [round(v, 2) for v in os.getloadavg()]},
        "parameters": {
            key: str(value) if isinstance(value, Path) else value
            for key, value in vars(args).items()
        },
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(report_lines(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
