"""Feast side of benchmarks/gateway.py; runs in Feast's own venv, never in churnwire's .venv.

``python feast_peer.py REPO_DIR REDIS_HOST:PORT ROWS_JSONL SCHEMA_JSON`` writes a Feast repo
(provider local, file registry, Redis online store, a parquet FileSource), registers one
entity and one feature view holding every column of the schema (the same features and churn
fields the gateway answers with), and writes the rows straight into the online store.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Bool, Float64, Int64, String

log = logging.getLogger("benchmarks.feast_peer")

VIEW = "customer_churn"
DTYPES = {"int": Int64, "float": Float64, "string": String, "bool": Bool}
PANDAS_DTYPES = {"int": "int64", "float": "float64", "string": "object", "bool": "bool"}


def write_repo(repo: Path, redis_address: str) -> None:
    """The feature_store.yaml of a local provider with Redis as its online store."""
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "data").mkdir(exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: churnwire_bench\n"
        "provider: local\n"
        "registry: data/registry.db\n"
        "online_store:\n"
        "  type: redis\n"
        f'  connection_string: "{redis_address}"\n'
        "offline_store:\n"
        "  type: file\n"
        "entity_key_serialization_version: 3\n"
    )


def frame(rows_path: Path, schema: list[tuple[str, str]]) -> pd.DataFrame:
    """The rows as a typed frame with an event timestamp."""
    rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line]
    table = pd.DataFrame(rows, columns=["customer_id", *(name for name, _ in schema)])
    for name, kind in schema:
        if table[name].isna().any():
            # Missing values stay None, which Feast stores as null, as the gateway answers.
            table[name] = table[name].astype(object).where(table[name].notna(), None)
        else:
            table[name] = table[name].astype(PANDAS_DTYPES[kind])
    table["event_timestamp"] = datetime.now(UTC)
    return table


def main(argv: list[str]) -> int:
    """Register the view, write the parquet source and the online rows."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    repo, redis_address, rows_path, schema_path = Path(argv[0]), argv[1], Path(argv[2]), argv[3]
    schema = [(name, kind) for name, kind in json.loads(Path(schema_path).read_text())]
    write_repo(repo, redis_address)
    table = frame(rows_path, schema)
    source_path = repo / "data" / "customer_churn.parquet"
    table.to_parquet(source_path, index=False)

    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)
    view = FeatureView(
        name=VIEW,
        entities=[customer],
        ttl=timedelta(days=3650),
        schema=[Field(name=name, dtype=DTYPES[kind]) for name, kind in schema],
        source=FileSource(path=str(source_path.resolve()), timestamp_field="event_timestamp"),
        online=True,
    )
    store = FeatureStore(repo_path=str(repo))
    store.apply([customer, view])
    store.write_to_online_store(VIEW, table)
    log.info("wrote %d customers x %d features to Feast's online store", len(table), len(schema))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
