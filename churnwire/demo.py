"""``churnwire demo`` (``make demo``): the whole pipeline on the embedded stack, narrated.

Brings the stack up, loads the real CDNOW log into PostgreSQL, shows the change events
reaching Kafka and the worker folding them into Redis, then prints one customer's features.
The stack keeps running afterwards.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import redis

from churnwire.config import Settings
from churnwire.data.cdnow import load_cdnow
from churnwire.embedded.stack import Stack
from churnwire.state.features import FEATURES, compute_features
from churnwire.state.layout import WATERMARK
from churnwire.state.snapshot import read_customer
from churnwire.streams.idle import wait_idle
from churnwire.timeutil import from_micros
from churnwire.topics import topic_message_counts


def _heading(text: str) -> None:
    print(f"\n== {text}")


async def _table_counts(postgres_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(postgres_url)
    try:
        return {
            table: await connection.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("customers", "orders")
        }
    finally:
        await connection.close()


def _show_change_events(settings: Settings, timeout: float = 300.0) -> None:
    """Print the number of change events per topic until Kafka holds every loaded row."""
    rows = asyncio.run(_table_counts(settings.postgres_url))
    topics = {settings.customers_topic: rows["customers"], settings.orders_topic: rows["orders"]}
    deadline = time.monotonic() + timeout
    while True:
        counts = topic_message_counts(settings, list(topics))
        line = ", ".join(f"{topic}: {counts[topic]:,} events" for topic in topics)
        print(f"  {line}")
        if all(counts[topic] >= rows_in_table for topic, rows_in_table in topics.items()):
            return
        if time.monotonic() > deadline:
            print("  (CDC is still catching up; continuing)")
            return
        time.sleep(2.0)


async def _busiest_customer(postgres_url: str) -> str:
    connection = await asyncpg.connect(postgres_url)
    try:
        customer_id: str = await connection.fetchval(
            "SELECT customer_id FROM orders GROUP BY customer_id ORDER BY count(*) DESC LIMIT 1"
        )
    finally:
        await connection.close()
    return customer_id


def _show_customer(settings: Settings) -> None:
    """Print the features of the customer with the most orders, as of the watermark."""
    customer_id = asyncio.run(_busiest_customer(settings.postgres_url))
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        watermark = int(client.get(WATERMARK) or 0)
        profile, orders = read_customer(client, customer_id)
    finally:
        client.close()
    if profile is None:
        print("  (customer not in Redis yet)")
        return
    print(f"  watermark (latest order event time seen): {from_micros(watermark):%Y-%m-%d}")
    print(f"  customer {customer_id}, evaluated at the watermark:")
    timestamps = {spec.name for spec in FEATURES if spec.kind == "timestamp"}
    for name, value in compute_features(orders, profile, watermark).items():
        if value is None:
            continue
        if name in timestamps:
            shown = f"{from_micros(value):%Y-%m-%d}"
        else:
            shown = f"{value:,.2f}" if isinstance(value, float) else f"{value}"
        print(f"    {name:<26} {shown}")


def run_demo(settings: Settings) -> int:
    """Run the demo; return the process exit code."""
    stack = Stack(settings)
    _heading("1. Starting the embedded stack (PostgreSQL, Redis, Kafka, Debezium CDC, worker)")
    for name, status in stack.up(timeout=180).items():
        print(f"  {name:<9} {'ok' if status.healthy else 'DOWN'}  {status.url}")

    _heading("2. Loading the real CDNOW transaction log into PostgreSQL")
    report = load_cdnow(settings.postgres_url)
    print(f"  {report.summary()}")

    _heading("3. Change events reaching Kafka through Debezium")
    _show_change_events(settings)

    _heading("4. Waiting for the stream worker to fold every change into Redis")
    idle = wait_idle(settings, timeout=600)
    print(f"  {'caught up' if idle.idle else 'still behind: ' + idle.waiting_for}"
          f" after {idle.seconds:.1f} s")

    _heading("5. One customer's features, computed from the online state")
    _show_customer(settings)

    print("\nThe stack keeps running. 'churnwire status' shows it; 'churnwire down' stops it.")
    return 0 if idle.idle else 1
