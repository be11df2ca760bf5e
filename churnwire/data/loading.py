"""Shared loading machinery: row types, the load report and the event-ordered inserter.

Debezium turns every row written to ``customers`` and ``orders`` into a change event, so the
order of the writes is the order the stream sees. The inserter therefore writes in event time:
each customer before their first order, orders by ``created_at``, committed in chunks so change
events flow while a large load is still running. Rows are copied into a temporary table first
and moved with ``INSERT ... SELECT ... ORDER BY ... ON CONFLICT DO NOTHING``, which is fast,
idempotent, and reports exactly how many rows were new.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

import asyncpg
from tqdm import tqdm

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ORDERS = 5_000
SUMMARY_MALFORMED_LIMIT = 10


class CustomerRow(NamedTuple):
    """One row of ``customers``, in the column order of ``CUSTOMER_COLUMNS``."""

    customer_id: str
    email: str | None
    segment: str | None
    country: str | None
    acquisition_channel: str | None
    signup_at: datetime
    marketing_opt_in: bool
    source: str


class OrderRow(NamedTuple):
    """One row of ``orders``, in the column order of ``ORDER_COLUMNS``."""

    order_id: str
    customer_id: str
    amount: Decimal
    items: int
    category: str | None
    status: str
    created_at: datetime


CUSTOMER_COLUMNS = CustomerRow._fields
ORDER_COLUMNS = OrderRow._fields


@dataclass(frozen=True)
class InsertCounts:
    """Rows new to the database and rows skipped because their primary key was present."""

    customers_inserted: int = 0
    customers_present: int = 0
    orders_inserted: int = 0
    orders_present: int = 0


@dataclass(frozen=True)
class LoadReport:
    """What one load did: rows inserted, rows already present, lines rejected, time taken."""

    source: str
    customers_inserted: int = 0
    orders_inserted: int = 0
    customers_present: int = 0
    orders_present: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    @classmethod
    def from_counts(
        cls,
        source: str,
        counts: InsertCounts,
        malformed: Sequence[tuple[int, str]] = (),
        seconds: float = 0.0,
    ) -> LoadReport:
        """Report of a load whose database step returned ``counts``."""
        return cls(
            source=source,
            customers_inserted=counts.customers_inserted,
            orders_inserted=counts.orders_inserted,
            customers_present=counts.customers_present,
            orders_present=counts.orders_present,
            malformed=list(malformed),
            seconds=seconds,
        )

    @property
    def skipped(self) -> int:
        """Rows not inserted because a row with the same primary key already existed."""
        return self.customers_present + self.orders_present

    def summary(self) -> str:
        """Human-readable account of the load, listing the first malformed lines."""
        lines = [
            f"{self.source}: inserted {self.customers_inserted:,} customers and "
            f"{self.orders_inserted:,} orders in {self.seconds:.1f} s",
            f"already present (skipped): {self.customers_present:,} customers, "
            f"{self.orders_present:,} orders",
            f"malformed lines (skipped): {len(self.malformed):,}",
        ]
        for line_number, reason in self.malformed[:SUMMARY_MALFORMED_LIMIT]:
            lines.append(f"  line {line_number}: {reason}")
        hidden = len(self.malformed) - SUMMARY_MALFORMED_LIMIT
        if hidden > 0:
            lines.append(f"  ... and {hidden:,} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class Chunk:
    """Rows committed together: the customers first, then the orders."""

    customers: list[CustomerRow]
    orders: list[OrderRow]


def plan_chunks(
    customers: Sequence[CustomerRow],
    orders: Sequence[OrderRow],
    chunk_size: int = DEFAULT_CHUNK_ORDERS,
) -> Iterator[Chunk]:
    """Split rows into event-time ordered chunks of at most ``chunk_size`` orders.

    Orders are sorted by ``created_at``. Each chunk carries, ahead of its orders, every customer
    not yet written who signed up by the chunk's last order or who places an order in it, so no
    order ever precedes its customer. Customers who sign up after the last order come last.
    """
    # Limitation: inside one chunk all its customers are written before all its orders, so a
    # customer who signs up late in a chunk's span precedes that chunk's earlier orders. Each
    # table's own stream is in exact event-time order; only the interleaving of the two is
    # coarse, by at most one chunk. Writing runs of each table in turn would end it, at the
    # cost of many more statements.
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    by_signup = sorted(customers, key=lambda customer: customer.signup_at)
    by_id = {customer.customer_id: customer for customer in by_signup}
    by_time = sorted(orders, key=lambda order: order.created_at)
    written: set[str] = set()
    next_customer = 0

    def take(customer: CustomerRow, due: list[CustomerRow]) -> None:
        if customer.customer_id not in written:
            written.add(customer.customer_id)
            due.append(customer)

    for start in range(0, len(by_time), chunk_size):
        chunk_orders = by_time[start : start + chunk_size]
        horizon = chunk_orders[-1].created_at
        due: list[CustomerRow] = []
        while next_customer < len(by_signup) and by_signup[next_customer].signup_at <= horizon:
            take(by_signup[next_customer], due)
            next_customer += 1
        for order in chunk_orders:
            if order.customer_id in by_id:
                take(by_id[order.customer_id], due)
        yield Chunk(due, chunk_orders)

    late: list[CustomerRow] = []
    for customer in by_signup[next_customer:]:
        take(customer, late)
    for start in range(0, len(late), chunk_size):
        yield Chunk(late[start : start + chunk_size], [])


_STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS staged_customers
    (LIKE customers INCLUDING DEFAULTS, load_position bigint) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS staged_orders
    (LIKE orders INCLUDING DEFAULTS, load_position bigint) ON COMMIT DELETE ROWS;
"""


def _move_sql(table: str, columns: Sequence[str], time_column: str, key: str) -> str:
    names = ", ".join(columns)
    return (
        f"INSERT INTO {table} ({names}) SELECT {names} FROM staged_{table} "
        f"ORDER BY {time_column}, load_position ON CONFLICT ({key}) DO NOTHING"
    )


_MOVE_CUSTOMERS = _move_sql("customers", CUSTOMER_COLUMNS, "signup_at", "customer_id")
_MOVE_ORDERS = _move_sql("orders", ORDER_COLUMNS, "created_at", "order_id")


def _inserted(status: str) -> int:
    """Row count of an ``INSERT 0 <n>`` command status."""
    return int(status.rsplit(" ", 1)[-1])


async def _write_chunk(
    connection: asyncpg.Connection, chunk: Chunk, position: int
) -> tuple[int, int]:
    """Stage and insert one chunk in one transaction; return (customers, orders) inserted."""
    customers_inserted = orders_inserted = 0
    async with connection.transaction():
        if chunk.customers:
            await connection.copy_records_to_table(
                "staged_customers",
                records=[(*row, position + index) for index, row in enumerate(chunk.customers)],
                columns=[*CUSTOMER_COLUMNS, "load_position"],
            )
            customers_inserted = _inserted(await connection.execute(_MOVE_CUSTOMERS))
        if chunk.orders:
            await connection.copy_records_to_table(
                "staged_orders",
                records=[(*row, position + index) for index, row in enumerate(chunk.orders)],
                columns=[*ORDER_COLUMNS, "load_position"],
            )
            orders_inserted = _inserted(await connection.execute(_MOVE_ORDERS))
    return customers_inserted, orders_inserted


async def insert_in_event_order(
    postgres_url: str,
    customers: Sequence[CustomerRow],
    orders: Sequence[OrderRow],
    *,
    chunk_size: int = DEFAULT_CHUNK_ORDERS,
    progress: bool = True,
) -> InsertCounts:
    """Insert customers and orders idempotently, in event-time order, one chunk per commit."""
    customers_inserted = orders_inserted = 0
    customers_offered = orders_offered = 0
    bar = tqdm(
        total=len(customers) + len(orders),
        unit="row",
        desc="loading",
        file=sys.stderr,
        disable=not progress or not sys.stderr.isatty(),
    )
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(_STAGING_DDL)
        for chunk in plan_chunks(customers, orders, chunk_size):
            position = customers_offered + orders_offered
            new_customers, new_orders = await _write_chunk(connection, chunk, position)
            customers_inserted += new_customers
            orders_inserted += new_orders
            customers_offered += len(chunk.customers)
            orders_offered += len(chunk.orders)
            bar.update(len(chunk.customers) + len(chunk.orders))
            log.debug(
                "chunk committed: %d/%d customers, %d/%d orders new",
                new_customers,
                len(chunk.customers),
                new_orders,
                len(chunk.orders),
            )
    finally:
        bar.close()
        await connection.close()
    return InsertCounts(
        customers_inserted=customers_inserted,
        customers_present=customers_offered - customers_inserted,
        orders_inserted=orders_inserted,
        orders_present=orders_offered - orders_inserted,
    )


def log_report(report: LoadReport) -> None:
    """Log the outcome of a load in one line."""
    log.info(
        "%s loaded: %d customers and %d orders inserted, %d rows already present, "
        "%d malformed lines, %.1f s",
        report.source,
        report.customers_inserted,
        report.orders_inserted,
        report.skipped,
        len(report.malformed),
        report.seconds,
    )
