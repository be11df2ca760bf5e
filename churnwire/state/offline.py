"""The offline feature builder: features from PostgreSQL as they were at an as-of time."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from churnwire.state.features import CustomerProfile, OrderFact, WebFact
from churnwire.state.table import feature_rows
from churnwire.timeutil import from_micros, to_micros

_CUSTOMERS = """
SELECT customer_id, signup_at, segment, country, acquisition_channel, marketing_opt_in
FROM customers WHERE signup_at <= $1
"""
_ORDERS = """
SELECT order_id, customer_id, amount, items, status, created_at
FROM orders WHERE created_at <= $1
"""


async def _fetch(postgres_url: str, as_of: int) -> tuple[list[Any], list[Any]]:
    connection = await asyncpg.connect(postgres_url)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            moment = from_micros(as_of)
            customers = await connection.fetch(_CUSTOMERS, moment)
            orders = await connection.fetch(_ORDERS, moment)
    finally:
        await connection.close()
    return customers, orders


def build_offline(
    postgres_url: str, as_of: int, web: Mapping[str, Sequence[WebFact]] | None = None
) -> list[dict[str, Any]]:
    """Feature rows of every customer signed up by ``as_of``, from orders up to ``as_of``.

    Web events are not in PostgreSQL: pass them as read from the ``web-events`` topic by
    :func:`churnwire.state.web_log.read_web_log` (without them, web features are zero).
    """
    customers, orders = asyncio.run(_fetch(postgres_url, as_of))
    facts: dict[str, list[OrderFact]] = defaultdict(list)
    for row in orders:
        facts[row["customer_id"]].append(
            OrderFact(
                order_id=row["order_id"],
                created_at=to_micros(row["created_at"]),
                amount=float(row["amount"]),
                items=row["items"],
                status=row["status"],
            )
        )
    profiles = (
        CustomerProfile(
            customer_id=row["customer_id"],
            signup_at=to_micros(row["signup_at"]),
            segment=row["segment"],
            country=row["country"],
            acquisition_channel=row["acquisition_channel"],
            marketing_opt_in=row["marketing_opt_in"],
        )
        for row in customers
    )
    return feature_rows(((p, facts.get(p.customer_id, [])) for p in profiles), as_of, web)
