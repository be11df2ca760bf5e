"""The one encoding of feature rows into model input, shared by training and serving.

Numeric features are taken as they are (missing values become NaN, which XGBoost and its ONNX
export both route down each tree's learned default branch), booleans become 0/1, and each
string feature is one-hot encoded over the categories seen at training time: a column named
``segment=vip`` is 1 when the row's segment is ``vip``, and a value never seen in training
sets every column of its feature to 0. Absolute timestamps (``first_order_at``,
``last_order_at``) are never model input: they would teach the model calendar time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from churnwire.state.features import FEATURES, NUMERIC_FEATURES

BOOLEAN_FEATURES: tuple[str, ...] = tuple(s.name for s in FEATURES if s.kind == "bool")
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(s.name for s in FEATURES if s.kind == "string")
# A category must occur this often in training to get a column; rarer ones encode as unknown.
MIN_CATEGORY_ROWS = 20
MAX_CATEGORIES_PER_FEATURE = 50

FloatMatrix = npt.NDArray[np.float32]
# A column's plan: (feature name, one-hot value or None for a numeric/boolean column).
_Plan = tuple[tuple[str, str | None], ...]


def one_hot_column(feature: str, value: str) -> str:
    """Name of the one-hot column of ``feature`` equal to ``value``, e.g. ``segment=vip``."""
    return f"{feature}={value}"


def learn_categories(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Categories of each string feature frequent enough in ``rows`` to get a column."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in CATEGORICAL_FEATURES}
    for row in rows:
        for name in CATEGORICAL_FEATURES:
            value = row.get(name)
            if value is not None:
                counts[name][str(value)] += 1
    categories = {}
    for name, counter in counts.items():
        frequent = [(v, n) for v, n in counter.items() if n >= MIN_CATEGORY_ROWS]
        frequent.sort(key=lambda item: (-item[1], item[0]))
        categories[name] = sorted(v for v, _ in frequent[:MAX_CATEGORIES_PER_FEATURE])
    return categories


def feature_columns(
    categories: Mapping[str, Sequence[str]],
    numeric: Sequence[str] = NUMERIC_FEATURES,
    boolean: Sequence[str] = BOOLEAN_FEATURES,
) -> tuple[str, ...]:
    """Model input columns: numeric, then boolean, then one-hot columns in category order."""
    one_hot = [
        one_hot_column(name, value)
        for name in CATEGORICAL_FEATURES
        for value in categories.get(name, ())
    ]
    return (*numeric, *boolean, *one_hot)


@lru_cache(maxsize=64)
def _plan(columns: tuple[str, ...], categories: tuple[tuple[str, tuple[str, ...]], ...]) -> _Plan:
    known = dict(categories)
    plan: list[tuple[str, str | None]] = []
    for column in columns:
        name, separator, value = column.partition("=")
        if separator:
            if name not in CATEGORICAL_FEATURES:
                raise ValueError(f"column {column!r}: {name!r} is not a string feature")
            if value not in known.get(name, ()):
                raise ValueError(f"column {column!r}: {value!r} is not a recorded category")
            plan.append((name, value))
        elif name in NUMERIC_FEATURES or name in BOOLEAN_FEATURES:
            plan.append((name, None))
        else:
            raise ValueError(f"column {column!r} is not a numeric or boolean feature")
    return tuple(plan)


def _numeric(value: Any) -> float:
    if value is None:
        return math.nan
    return float(value)


def feature_matrix(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    categories: Mapping[str, Sequence[str]],
) -> FloatMatrix:
    """A float32 matrix of ``rows`` in ``columns`` order; NaN where a value is missing."""
    frozen = tuple(sorted((name, tuple(values)) for name, values in categories.items()))
    plan = _plan(tuple(columns), frozen)
    matrix = np.empty((len(rows), len(plan)), dtype=np.float32)
    for i, row in enumerate(rows):
        matrix[i] = [
            _numeric(row.get(name)) if value is None else float(row.get(name) == value)
            for name, value in plan
        ]
    return matrix
