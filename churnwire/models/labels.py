"""Churn labels from PostgreSQL orders: no counted order in the horizon after a cutoff.

A customer scored at ``as_of`` (the last microsecond of the cutoff day) is churned when none of
their orders with ``as_of < created_at <= as_of + horizon`` counts (``OrderFact.counts``: not
cancelled, refunded or failed). Orders after the horizon never change a label.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta

import asyncpg

from churnwire.state.features import MICROS_PER_DAY, OrderFact
from churnwire.timeutil import from_micros, to_micros

log = logging.getLogger(__name__)

_ORDERS_IN_WINDOW = """
SELECT order_id, customer_id, amount, items, status, created_at
FROM orders WHERE created_at > $1 AND created_at <= $2
"""
_NEWEST_ORDER = "SELECT max(created_at) FROM orders"


class LabelWindowIncomplete(ValueError):
    """The database holds no orders up to the end of a label window: labels would be wrong."""


def horizon_end(as_of: int, horizon_days: int) -> int:
    """The last microsecond of the label window that starts after ``as_of``."""
    return as_of + horizon_days * MICROS_PER_DAY


async def _buyers(postgres_url: str, as_of: int, end: int) -> tuple[set[str], int | None]:
    connection = await asyncpg.connect(postgres_url)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            newest = await connection.fetchval(_NEWEST_ORDER)
            rows = await connection.fetch(_ORDERS_IN_WINDOW, from_micros(as_of), from_micros(end))
    finally:
        await connection.close()
    buyers = {
        row["customer_id"]
        for row in rows
        if OrderFact(
            row["order_id"], to_micros(row["created_at"]), float(row["amount"]), row["items"],
            row["status"],
        ).counts
    }
    return buyers, None if newest is None else to_micros(newest)


def churn_labels(
    postgres_url: str, customer_ids: Iterable[str], as_of: int, horizon_days: int
) -> dict[str, int]:
    """1 (churned) or 0 for each customer, from orders in ``(as_of, as_of + horizon]``.

    Raises LabelWindowIncomplete when the newest order in the database is older than the end of
    the window, which would label customers churned only because the data stops.
    """
    end = horizon_end(as_of, horizon_days)
    buyers, newest = asyncio.run(_buyers(postgres_url, as_of, end))
    # A window ending on the last loaded day is complete if that day has any order at all.
    if newest is None or newest < end - MICROS_PER_DAY + 1:
        newest_text = "none" if newest is None else from_micros(newest).isoformat()
        raise LabelWindowIncomplete(
            f"labels at {from_micros(as_of):%Y-%m-%d} with a {horizon_days}-day horizon need "
            f"orders up to {from_micros(end):%Y-%m-%d}, but the newest order is {newest_text}"
        )
    labels = {customer_id: int(customer_id not in buyers) for customer_id in customer_ids}
    log.info(
        "labels at %s + %d days: %d customers, %d churned",
        from_micros(as_of).date(), horizon_days, len(labels), sum(labels.values()),
    )
    return labels


def label_window_text(as_of: int, horizon_days: int) -> str:
    """The label window as dates, e.g. ``1997-10-01..1997-12-29``."""
    first = from_micros(as_of) + timedelta(microseconds=1)
    last = from_micros(horizon_end(as_of, horizon_days))
    return f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"
