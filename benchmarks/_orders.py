"""Synthetic orders for the benchmarks: deterministic rows and writers that commit them.

``benchmarks/cdc.py`` and ``benchmarks/stream.py`` both time orders from their commit in
PostgreSQL; they share these rows and the steady-rate writer so their figures compare.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

INSERT_ORDER = """
INSERT INTO orders (order_id, customer_id, amount, items, category, status, created_at)
VALUES ($1, $2, $3, $4, $5, 'completed', $6)
"""
INSERT_CUSTOMER = """
INSERT INTO customers (customer_id, segment, country, acquisition_channel, signup_at)
VALUES ($1, 'bench', 'XX', 'benchmark', $2)
"""
CATEGORIES = ("books", "music", "games", "garden", "kitchen")
OrderRow = tuple[str, str, Decimal, int, str, datetime]


def order_row(phase: str, index: int, customers: int) -> OrderRow:
    """One deterministic synthetic order of ``phase``."""
    created_at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=index)
    return (
        f"{phase}-{index:07d}",
        f"bench-c{index % customers:05d}",
        Decimal(10 + index % 90) + Decimal("0.99"),
        1 + index % 4,
        CATEGORIES[index % len(CATEGORIES)],
        created_at,
    )


async def create_customers(url: str, count: int) -> None:
    """Insert the customers every benchmark order refers to."""
    connection = await asyncpg.connect(url)
    try:
        signup_at = datetime(2025, 1, 1, tzinfo=UTC)
        await connection.executemany(
            INSERT_CUSTOMER, [(f"bench-c{i:05d}", signup_at) for i in range(count)]
        )
    finally:
        await connection.close()


async def commit_steadily(
    url: str,
    phase: str,
    rate: float,
    total: int,
    writers: int,
    customers: int,
    committed: dict[str, float] | None = None,
) -> dict[str, float]:
    """Commit ``total`` single-row transactions on a fixed schedule; return commit time per id.

    Several connections share one schedule so that a slow commit does not push back the next
    slot. A commit's time is taken when Postgres has acknowledged it. ``committed``, when given,
    is filled as commits happen, so a watcher can follow them live.
    """
    connections = [await asyncpg.connect(url) for _ in range(writers)]
    committed = {} if committed is None else committed
    slots = iter(range(total))
    first_due = time.time() + 0.2

    async def write(connection: asyncpg.Connection) -> None:
        for index in slots:
            delay = first_due + index / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            row = order_row(phase, index, customers)
            await connection.execute(INSERT_ORDER, *row)
            committed[row[0]] = time.time()

    try:
        await asyncio.gather(*(write(connection) for connection in connections))
    finally:
        for connection in connections:
            await connection.close()
    return committed
