"""Compares two feature tables row by row: counts and strings exactly, money within a tolerance."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from churnwire.state.features import FEATURES

MONEY_TOLERANCE = 1e-6


def _same(kind: str, left: Any, right: Any, tolerance: float) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if kind == "float":
        return math.isclose(float(left), float(right), rel_tol=0.0, abs_tol=tolerance)
    return bool(left == right)


def compare_feature_rows(
    expected: Sequence[dict[str, Any]],
    actual: Sequence[dict[str, Any]],
    tolerance: float = MONEY_TOLERANCE,
) -> list[str]:
    """Every difference between two feature tables, as readable lines (empty when equal)."""
    left = {row["customer_id"]: row for row in expected}
    right = {row["customer_id"]: row for row in actual}
    problems = [f"{cid}: only in the first table" for cid in sorted(left.keys() - right.keys())]
    problems += [f"{cid}: only in the second table" for cid in sorted(right.keys() - left.keys())]
    for customer_id in sorted(left.keys() & right.keys()):
        for spec in FEATURES:
            a, b = left[customer_id][spec.name], right[customer_id][spec.name]
            if not _same(spec.kind, a, b, tolerance):
                problems.append(f"{customer_id}: {spec.name} {a!r} != {b!r}")
    return problems
