"""Drift of the live inputs and scores against the training set: population stability index.

Training stores, in the model card, each numeric feature's distribution over the training
rows and the distribution of the held-out scores, as decile cut points and the share of
rows in each bin (plus the share of missing values). The worker keeps the newest scored
rows in a ring buffer and, at most every ``PUBLISH_SECONDS``, compares them with that
reference: ``churnwire_feature_psi{feature}`` and ``churnwire_score_psi``. A PSI below 0.1
is usually read as no shift, 0.1-0.25 as moderate, above 0.25 as a strong shift.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from churnwire.models import serving_metrics as metrics

log = logging.getLogger(__name__)

BINS = 10
# A bin empty on one side would make the index infinite; this floor keeps it finite.
EPSILON = 1e-4
DEFAULT_WINDOW = 5000
PUBLISH_SECONDS = 10.0
# Below this many scored rows the comparison is noise: nothing is published yet.
MIN_ROWS = 200


def reference_bins(values: npt.ArrayLike, bins: int = BINS) -> dict[str, Any]:
    """Quantile cut points of ``values`` and the share of values in each bin and missing."""
    array = np.asarray(values, dtype=np.float64)
    present = array[~np.isnan(array)]
    if present.size == 0:
        return {"cuts": [], "proportions": [0.0], "missing": 1.0}
    quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
    cuts = [float(cut) for cut in np.unique(quantiles)]
    return {"cuts": cuts, **bin_shares(array, cuts)}


def bin_shares(values: npt.ArrayLike, cuts: Sequence[float]) -> dict[str, Any]:
    """Share of ``values`` in each bin bounded by ``cuts`` (right-closed) and missing."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return {"proportions": [0.0] * (len(cuts) + 1), "missing": 0.0}
    missing = np.isnan(array)
    index = np.searchsorted(np.asarray(cuts, dtype=np.float64), array[~missing], side="left")
    counts = np.bincount(index, minlength=len(cuts) + 1)
    return {
        "proportions": [float(count) / array.size for count in counts],
        "missing": float(missing.sum()) / array.size,
    }


def psi(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> float:
    """Population stability index between two bin-share distributions with the same cuts."""
    expected_shares = [*expected["proportions"], expected["missing"]]
    actual_shares = [*actual["proportions"], actual["missing"]]
    if len(expected_shares) != len(actual_shares):
        raise ValueError(f"{len(expected_shares)} bins against {len(actual_shares)}")
    total = 0.0
    for e, a in zip(expected_shares, actual_shares, strict=True):
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def drift_reference(
    matrix: npt.NDArray[np.floating[Any]],
    columns: Sequence[str],
    scores: npt.ArrayLike,
) -> dict[str, Any]:
    """The reference stored in the model card: numeric features and scores, in bins."""
    features = {
        column: reference_bins(matrix[:, index])
        for index, column in enumerate(columns)
        if "=" not in column  # one-hot columns of categories: their share is the category's
    }
    return {"bins": BINS, "features": features, "score": reference_bins(scores)}


class DriftMonitor:
    """The newest scored rows of one model version, compared with its training reference."""

    def __init__(
        self,
        reference: Mapping[str, Any],
        columns: Sequence[str],
        window: int = DEFAULT_WINDOW,
        publish_seconds: float = PUBLISH_SECONDS,
    ) -> None:
        self._reference = reference
        self._features = [
            (index, column) for index, column in enumerate(columns)
            if column in reference.get("features", {})
        ]
        self._rows = np.full((window, len(columns)), np.nan, dtype=np.float32)
        self._scores = np.full(window, np.nan, dtype=np.float64)
        self._filled = 0
        self._next = 0
        self._publish_seconds = publish_seconds
        self._published_at = -math.inf
        self._lock = threading.Lock()

    def observe(self, matrix: npt.NDArray[np.float32], scores: npt.ArrayLike) -> None:
        """Add a scored batch to the window; publish the gauges when they are due."""
        score_array = np.asarray(scores, dtype=np.float64)
        window = len(self._scores)
        with self._lock:
            for start in range(0, len(score_array), window):
                self._append(matrix[start:start + window], score_array[start:start + window])
            due = time.monotonic() - self._published_at >= self._publish_seconds
        if due and self._filled >= MIN_ROWS:
            self.publish()

    def _append(self, matrix: npt.NDArray[np.float32], scores: npt.NDArray[np.float64]) -> None:
        window = len(self._scores)
        positions = (self._next + np.arange(len(scores))) % window
        self._rows[positions] = matrix
        self._scores[positions] = scores
        self._next = int((self._next + len(scores)) % window)
        self._filled = min(window, self._filled + len(scores))

    def values(self) -> dict[str, float]:
        """PSI of every reference feature and of the score (key ``"score"``) over the window."""
        with self._lock:
            rows = self._rows[: self._filled].copy()
            scores = self._scores[: self._filled].copy()
        result = {}
        for index, column in self._features:
            expected = self._reference["features"][column]
            result[column] = psi(expected, bin_shares(rows[:, index], expected["cuts"]))
        score_reference = self._reference.get("score")
        if score_reference is not None:
            result["score"] = psi(score_reference, bin_shares(scores, score_reference["cuts"]))
        return result

    def publish(self) -> dict[str, float]:
        """Set ``churnwire_feature_psi`` and ``churnwire_score_psi``; return what was set."""
        self._published_at = time.monotonic()
        result = self.values()
        for column, value in result.items():
            if column == "score":
                metrics.SCORE_PSI.set(value)
            else:
                metrics.FEATURE_PSI.labels(feature=column).set(value)
        log.debug("drift published for %d features over %d rows", len(result), self._filled)
        return result
