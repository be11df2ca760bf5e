"""Small synchronous helpers for tests that change the system of record."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg


def execute(url: str, sql: str, *args: Any) -> None:
    """Run one statement (or a script, without arguments) in its own transaction."""

    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(sql, *args)
        finally:
            await connection.close()

    asyncio.run(run())


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Rows of one query."""

    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def insert_orders(
    url: str, customer_id: str, order_ids: Sequence[str], amount: str = "10.00"
) -> None:
    """Create the customer if needed and insert the orders in one transaction."""

    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            async with connection.transaction():
                await connection.execute(
                    "INSERT INTO customers (customer_id, signup_at) VALUES ($1, now()) "
                    "ON CONFLICT DO NOTHING",
                    customer_id,
                )
                await connection.executemany(
                    "INSERT INTO orders (order_id, customer_id, amount, created_at) "
                    "VALUES ($1, $2, $3::numeric, now())",
                    [(order_id, customer_id, amount) for order_id in order_ids],
                )
        finally:
            await connection.close()

    asyncio.run(run())
