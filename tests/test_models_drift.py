"""Population stability index and the drift monitor, as pure functions (no services)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import REGISTRY

from churnwire.models.drift import (
    EPSILON,
    MIN_ROWS,
    DriftMonitor,
    bin_shares,
    drift_reference,
    psi,
    reference_bins,
)


def test_reference_bins_are_deciles_with_missing_share() -> None:
    values = np.concatenate([np.arange(1, 101, dtype=float), [np.nan] * 25])
    reference = reference_bins(values)
    assert len(reference["cuts"]) == 9
    assert reference["missing"] == pytest.approx(25 / 125)
    assert sum(reference["proportions"]) + reference["missing"] == pytest.approx(1.0)
    assert reference["proportions"] == pytest.approx([10 / 125] * 10)


def test_constant_feature_collapses_to_one_cut() -> None:
    reference = reference_bins(np.zeros(50))
    assert reference["cuts"] == [0.0]
    assert reference["proportions"] == [1.0, 0.0]


def test_bin_shares_are_right_closed() -> None:
    shares = bin_shares([1.0, 2.0, 2.5, 3.0, np.nan], cuts=[2.0, 3.0])
    # (-inf, 2]: 1 and 2; (2, 3]: 2.5 and 3; above 3: none.
    assert shares["proportions"] == pytest.approx([0.4, 0.4, 0.0])
    assert shares["missing"] == pytest.approx(0.2)


def test_psi_of_identical_distributions_is_zero() -> None:
    reference = reference_bins(np.random.default_rng(1).normal(size=5000))
    assert psi(reference, reference) == pytest.approx(0.0)


def test_psi_matches_the_formula_by_hand() -> None:
    expected = {"proportions": [0.5, 0.5], "missing": 0.0}
    actual = {"proportions": [0.8, 0.2], "missing": 0.0}
    by_hand = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    # The empty missing bin on both sides adds nothing (equal floors).
    assert psi(expected, actual) == pytest.approx(by_hand)


def test_psi_stays_finite_when_a_bin_empties() -> None:
    expected = {"proportions": [0.5, 0.5], "missing": 0.0}
    actual = {"proportions": [1.0, 0.0], "missing": 0.0}
    value = psi(expected, actual)
    assert math.isfinite(value)
    assert value == pytest.approx(
        0.5 * math.log(1.0 / 0.5) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    )


def test_psi_refuses_different_bins() -> None:
    with pytest.raises(ValueError, match="3 bins against 2"):
        psi({"proportions": [0.5, 0.5], "missing": 0.0}, {"proportions": [1.0], "missing": 0.0})


def test_shifted_sample_has_large_psi_and_same_sample_small() -> None:
    rng = np.random.default_rng(7)
    reference = reference_bins(rng.normal(size=20_000))
    same = psi(reference, bin_shares(rng.normal(size=5000), reference["cuts"]))
    shifted = psi(reference, bin_shares(rng.normal(loc=1.0, size=5000), reference["cuts"]))
    assert same < 0.02
    assert shifted > 0.25


def test_reference_skips_one_hot_columns() -> None:
    matrix = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]], dtype=np.float32)
    reference = drift_reference(matrix, ["orders_90d", "segment=vip"], [0.1, 0.5, 0.9])
    assert set(reference["features"]) == {"orders_90d"}
    assert reference["score"]["cuts"]


def _gauge(name: str, labels: dict[str, str] | None = None) -> float | None:
    return REGISTRY.get_sample_value(name, labels or {})


def test_monitor_publishes_gauges_once_enough_rows_arrived() -> None:
    rng = np.random.default_rng(3)
    columns = ["drift_test_feature", "segment=a"]
    training = np.column_stack([rng.normal(size=10_000), rng.integers(0, 2, 10_000)])
    reference = drift_reference(training.astype(np.float32), columns, rng.uniform(size=10_000))
    monitor = DriftMonitor(reference, columns, window=1000, publish_seconds=0.0)

    few = np.column_stack([rng.normal(size=MIN_ROWS - 1), np.zeros(MIN_ROWS - 1)])
    monitor.observe(few.astype(np.float32), rng.uniform(size=MIN_ROWS - 1))
    assert _gauge("churnwire_feature_psi", {"feature": "drift_test_feature"}) is None

    shifted = np.column_stack([rng.normal(loc=2.0, size=3000), np.zeros(3000)])
    monitor.observe(shifted.astype(np.float32), rng.uniform(0.8, 1.0, size=3000))
    feature_psi = _gauge("churnwire_feature_psi", {"feature": "drift_test_feature"})
    score_psi = _gauge("churnwire_score_psi")
    assert feature_psi is not None and feature_psi > 1.0
    assert score_psi is not None and score_psi > 1.0
    assert _gauge("churnwire_feature_psi", {"feature": "segment=a"}) is None


def test_monitor_window_keeps_only_the_newest_rows() -> None:
    rng = np.random.default_rng(5)
    columns = ["x"]
    reference = drift_reference(rng.normal(size=(5000, 1)).astype(np.float32), columns,
                                rng.uniform(size=5000))
    monitor = DriftMonitor(reference, columns, window=500, publish_seconds=3600.0)
    monitor.observe(rng.normal(loc=3.0, size=(500, 1)).astype(np.float32),
                    rng.uniform(size=500))
    assert monitor.values()["x"] > 1.0
    # 1,200 in-distribution rows push every shifted one out of the 500-row window.
    monitor.observe(rng.normal(size=(1200, 1)).astype(np.float32), rng.uniform(size=1200))
    assert monitor.values()["x"] < 0.1
