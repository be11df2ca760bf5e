"""Feature tables as Arrow/Parquet: ``customer_id`` plus one typed column per feature."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from churnwire.state.features import (
    FEATURES,
    CustomerProfile,
    OrderFact,
    WebFact,
    compute_features,
)
from churnwire.timeutil import from_micros

_ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "string": pa.string(),
    "bool": pa.bool_(),
}

SCHEMA = pa.schema(
    [pa.field("customer_id", pa.string(), nullable=False)]
    + [pa.field(spec.name, _ARROW_TYPES[spec.kind]) for spec in FEATURES]
)


def feature_rows(
    customers: Iterable[tuple[CustomerProfile, list[OrderFact]]],
    as_of: int,
    web: Mapping[str, Sequence[WebFact]] | None = None,
) -> list[dict[str, Any]]:
    """One row per customer that exists at ``as_of``, sorted by customer id.

    ``web`` holds each customer's clickstream facts; customers missing from it have none.
    """
    web = web or {}
    rows = []
    for profile, orders in customers:
        if not profile.exists_at(as_of):
            continue
        facts = web.get(profile.customer_id, ())
        rows.append({"customer_id": profile.customer_id,
                     **compute_features(orders, profile, as_of, facts)})
    rows.sort(key=lambda row: row["customer_id"])
    return rows


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table with the feature schema (timestamps converted from microseconds)."""
    columns: dict[str, list[Any]] = {field.name: [] for field in SCHEMA}
    timestamp_names = {spec.name for spec in FEATURES if spec.kind == "timestamp"}
    for row in rows:
        for name, values in columns.items():
            value = row[name]
            if name in timestamp_names and value is not None:
                value = from_micros(value)
            values.append(value)
    return pa.table(columns, schema=SCHEMA)


def write_parquet(rows: list[dict[str, Any]], path: str | Path) -> int:
    """Write the rows as Parquet; return how many were written."""
    table = to_table(rows)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))
    return table.num_rows
