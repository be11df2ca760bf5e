"""Insight worker: alert-to-insight latency, insights per hour, retrieval latency.

Starts a private embedded stack under ``.churnwire-bench-insights/`` with the local model
(SmolLM2-135M-Instruct on llama-cpp-python, 2 threads), Qdrant in local mode and the
MongoDB-wire server; CDC and the stream worker are stopped (alerts are produced directly).
Customers are written into Redis and PostgreSQL, then:

- **latency**: alerts are sent one at a time, each after the previous insight was stored, so
  the figure is one insight's own time from the alert's publication to the stored document;
- **throughput**: a burst of alerts is sent at once and the time until the last insight is
  stored gives insights per hour at the default concurrency (and hours for 10,000);
- **retrieval**: the knowledge-base search (embedding + Qdrant top-k) timed in this process on
  a copy of the knowledge base, and the worker's own mean from its metrics.

Usage: ``.venv/bin/python benchmarks/insights.py [--alerts N]``; writes
``benchmarks/results/insights.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import redis
from _stack import REPO, RESULTS, isolate_environment, machine_info, percentiles_ms, private_stack
from confluent_kafka import Producer
from pymongo import MongoClient

from churnwire.config import Settings
from churnwire.insight_worker.knowledge import SHIPPED_PLAYBOOKS, load_knowledge_base
from churnwire.insight_worker.retrieval import Retriever
from churnwire.kafka_client import confluent_config
from churnwire.state.features import CustomerProfile, OrderFact
from churnwire.state.layout import (
    CUSTOMERS_INDEX,
    encode_order,
    encode_profile,
    orders_key,
    profile_key,
)
from churnwire.topics import CHURN_ALERTS

log = logging.getLogger("benchmarks.insights")

BENCH_ENVIRONMENT = {
    "CHURNWIRE_HOME": str(REPO / ".churnwire-bench-insights"),
    "CHURNWIRE_POSTGRES_PORT": "54399",
    "CHURNWIRE_REDIS_PORT": "63799",
    "CHURNWIRE_KAFKA_PORT": "19099",
    "CHURNWIRE_CDC_METRICS_PORT": "9496",
    "CHURNWIRE_WORKER_METRICS_PORT": "9497",
    "CHURNWIRE_GATEWAY_PORT": "8199",
    "CHURNWIRE_LLM_PORT": "18099",
    "CHURNWIRE_MONGO_PORT": "27199",
    "CHURNWIRE_INSIGHTS_METRICS_PORT": "9498",
    "CHURNWIRE_INSIGHTS_CACHE_HOURS": "0",
}
DAY = 86_400_000_000
AS_OF = 884_000_000_000_000  # early January 1998, epoch microseconds
DRIVER_SETS = [
    [("days_since_last_order", 140.0, 0.9), ("orders_90d", 0.0, 0.4)],
    [("spend_trend_30d", -120.0, 0.7), ("avg_order_value", 88.0, 0.3)],
    [("orders_lifetime", 1.0, 0.8), ("days_since_last_order", 300.0, 0.6)],
    [("orders_trend_90d", -3.0, 0.6), ("sessions_30d", 0.0, 0.2)],
]
SEGMENTS = ["regular", "vip", "new", None]


def _customers(settings: Settings, ids: list[str]) -> None:
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    pipe = client.pipeline(transaction=False)
    rng = random.Random(7)
    for number, customer_id in enumerate(ids):
        profile = CustomerProfile(customer_id, signup_at=AS_OF - 500 * DAY,
                                  segment=SEGMENTS[number % 4], marketing_opt_in=number % 3 > 0)
        pipe.hset(profile_key(customer_id), mapping={"_pos": "0" * 20, **encode_profile(profile)})
        pipe.sadd(CUSTOMERS_INDEX, customer_id)
        for index in range(rng.randint(1, 6)):
            order = OrderFact(f"{customer_id}-{index}", AS_OF - rng.randint(60, 400) * DAY,
                              round(rng.uniform(8, 120), 2), rng.randint(1, 5), "completed")
            pipe.hset(orders_key(customer_id), order.order_id, f"{'0' * 20}|{encode_order(order)}")
    pipe.execute()
    client.close()

    async def insert() -> None:
        connection = await asyncpg.connect(settings.postgres_url)
        try:
            await connection.executemany(
                "INSERT INTO customers (customer_id, segment, signup_at) VALUES ($1, $2, "
                "'1996-09-01') ON CONFLICT DO NOTHING",
                [(c, SEGMENTS[i % 4]) for i, c in enumerate(ids)])
            await connection.executemany(
                "INSERT INTO orders (order_id, customer_id, amount, items, category, created_at) "
                "VALUES ($1, $2, $3, 2, 'music', '1997-08-20') ON CONFLICT DO NOTHING",
                [(f"{c}-pg", c, 20 + i % 50) for i, c in enumerate(ids)])
        finally:
            await connection.close()

    asyncio.run(insert())


def _alert(customer_id: str, number: int) -> dict[str, Any]:
    drivers = DRIVER_SETS[number % len(DRIVER_SETS)]
    return {
        "alert_id": f"{customer_id}:1", "type": "churn_risk", "customer_id": customer_id,
        "probability": 0.9, "previous_probability": 0.6, "threshold": 0.8, "risk_band": "high",
        "model_version": "bench", "variant": "champion",
        "top_features": [{"feature": f, "value": v, "contribution": c} for f, v, c in drivers],
        "event_time": "1998-01-05T00:00:00+00:00",
        "published_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def _send(producer: Producer, alerts: list[dict[str, Any]]) -> None:
    for alert in alerts:
        alert["published_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        producer.produce(CHURN_ALERTS, json.dumps(alert).encode(),
                         key=alert["customer_id"].encode())
    producer.flush(30)


def _wait_stored(mongo: MongoClient, settings: Settings, alert_ids: list[str],  # type: ignore[type-arg]
                 timeout: float) -> list[dict[str, Any]]:
    collection = mongo[settings.insight.mongo_database]["insights"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(collection.find({"alert_id": {"$in": alert_ids}, "published": True},
                                     {"_id": False}))
        if len(found) == len(alert_ids):
            return found
        time.sleep(0.1)
    raise TimeoutError(f"only some of {len(alert_ids)} insights stored after {timeout} s")


def _retrieval(settings: Settings, queries: int) -> dict[str, Any]:
    copy = replace(settings, insights=replace(settings.insight, kb_path=settings.home / "kb-bench"))
    load_knowledge_base(copy, SHIPPED_PLAYBOOKS)
    retriever = Retriever(copy)
    texts = ["customer at high churn risk, segment vip; drivers: days from the latest order",
             "no marketing consent, spend fell in the last 30 days",
             "new customer with one order, unknown segment",
             "still visits the site but stopped ordering"]
    retriever.search_sync(texts[0])  # load the embedding model outside the timing
    durations = []
    for number in range(queries):
        started = time.perf_counter()
        retriever.search_sync(texts[number % len(texts)])
        durations.append(time.perf_counter() - started)
    retriever.close()
    return percentiles_ms(durations)


def _worker_metrics(settings: Settings) -> dict[str, float]:
    url = f"http://127.0.0.1:{settings.insight.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("churnwire_insight") and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def run(alerts: int) -> dict[str, Any]:
    """Measure and return the figures."""
    isolate_environment(BENCH_ENVIRONMENT)
    with private_stack() as stack:
        settings = stack.settings
        stack.cdc.stop()
        stack.worker.stop()
        ids = [f"bench-{n}" for n in range(2 * alerts)]
        _customers(settings, ids)
        producer = Producer(confluent_config(settings, **{"acks": "all"}))
        mongo: MongoClient = MongoClient(settings.insight.mongo_url)  # type: ignore[type-arg]

        sequential = []
        for number, customer_id in enumerate(ids[:alerts]):
            alert = _alert(customer_id, number)
            _send(producer, [alert])
            sequential += _wait_stored(mongo, settings, [alert["alert_id"]], 300)

        burst = [_alert(c, n) for n, c in enumerate(ids[alerts:])]
        started = time.monotonic()
        _send(producer, burst)
        stored = _wait_stored(mongo, settings, [a["alert_id"] for a in burst], 1800)
        elapsed = time.monotonic() - started
        metrics = _worker_metrics(settings)
        mongo.close()
        retrieval = _retrieval(settings, 200)

    per_hour = len(burst) / elapsed * 3600
    generators = [d["generator"] for d in sequential + stored]
    latencies = [d["latency_seconds"] for d in sequential]
    tokens = [d["tokens"]["total"] for d in sequential + stored if d["generator"] == "model"]
    retrieval_count = metrics.get("churnwire_insight_retrieval_seconds_count", 0)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": settings.insight.llm_model,
        "concurrency": settings.insight.concurrency,
        "max_tokens": settings.insight.llm_max_tokens,
        "json_mode": settings.insight.llm_json_mode,
        "alert_to_insight_seconds": {
            "alerts": len(latencies),
            "p50": round(float(_percentile(latencies, 50)), 2),
            "p95": round(float(_percentile(latencies, 95)), 2),
            "max": round(max(latencies), 2),
            "note": "one alert at a time: publication of the alert to the stored insight",
        },
        "throughput": {
            "alerts": len(burst), "seconds": round(elapsed, 1),
            "insights_per_hour": round(per_hour),
            "hours_for_10000_at_risk_customers": round(10_000 / per_hour, 2),
        },
        "generators": {g: generators.count(g) for g in sorted(set(generators))},
        "fallback_reasons": sorted({str(d.get("fallback_reason")) for d in sequential + stored
                                    if d["generator"] == "rules"}),
        "tokens_per_model_insight_mean": round(sum(tokens) / len(tokens), 1) if tokens else None,
        "retrieval_ms_in_process": retrieval,
        "retrieval_ms_in_worker_mean": round(
            1000 * metrics.get("churnwire_insight_retrieval_seconds_sum", 0) / retrieval_count, 1
        ) if retrieval_count else None,
        "machine": machine_info(("litellm", "llama_cpp_python", "qdrant-client", "motor")),
    }


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    """Run the benchmark and write benchmarks/results/insights.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=20, help="alerts per phase")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = run(args.alerts)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = Path(RESULTS / "insights.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
