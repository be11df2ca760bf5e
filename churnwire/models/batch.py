"""Scoring a feature table offline: ``churnwire score --features F.parquet --out S.parquet``.

The table is what ``churnwire features build`` or ``features snapshot`` writes; the model is a
registered version (the active one unless named), through the same ONNX Runtime session and
encoding the worker uses, so a batch score equals the live score of the same features.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from churnwire.models.registry import ModelRegistry

log = logging.getLogger(__name__)

SCORES_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("churn_probability", pa.float64(), nullable=False),
    ]
)
CHUNK_ROWS = 10_000


class FeatureTableError(ValueError):
    """The features file cannot be scored; the message says why."""


def _read_features(path: Path) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise FeatureTableError(f"{path}: not a readable Parquet file ({error})") from None
    if "customer_id" not in table.column_names:
        raise FeatureTableError(f"{path}: has no customer_id column")
    return table


def score_table(features: Path, out: Path, registry: ModelRegistry,
                version: str | None = None) -> tuple[str, int]:
    """Write ``customer_id, churn_probability`` for every row; return (model version, rows)."""
    model = registry.load(version)
    table = _read_features(features)
    missing = [column.partition("=")[0] for column in model.columns
               if column.partition("=")[0] not in table.column_names]
    if missing:
        raise FeatureTableError(
            f"{features}: lacks feature columns model {model.version} needs: "
            f"{', '.join(sorted(set(missing)))}"
        )
    customer_ids: list[str] = []
    probabilities: list[float] = []
    for batch in table.to_batches(max_chunksize=CHUNK_ROWS):
        rows = batch.to_pylist()
        customer_ids.extend(str(row["customer_id"]) for row in rows)
        probabilities.extend(float(p) for p in model.predict(rows))
    scores = pa.table({"customer_id": customer_ids, "churn_probability": probabilities},
                      schema=SCORES_SCHEMA.with_metadata({"model_version": model.version}))
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(scores, out)
    log.info("scored %d customers of %s with model %s -> %s",
             len(customer_ids), features, model.version, out)
    return model.version, len(customer_ids)
