"""Applies the shop schema (customers, orders) to the configured PostgreSQL."""

from __future__ import annotations

import logging
from importlib.resources import files

import asyncpg

log = logging.getLogger(__name__)

CAPTURED_TABLES = ("public.customers", "public.orders")


def schema_sql() -> str:
    """The idempotent DDL of the captured tables."""
    return files("churnwire.data").joinpath("schema.sql").read_text()


async def apply_schema(postgres_url: str) -> None:
    """Create the tables if missing and make sure CDC sees full before-images."""
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(schema_sql())
    finally:
        await connection.close()
    log.info("schema applied (%s)", ", ".join(CAPTURED_TABLES))
