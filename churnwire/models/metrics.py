"""Held-out metrics of a churn model and of the honest baselines it must beat."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

Vector = npt.NDArray[np.float64]
CALIBRATION_BINS = 10


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def calibration_table(labels: Vector, probabilities: Vector) -> list[dict[str, Any]]:
    """Mean predicted probability against the observed churn rate in ten equal-width bins."""
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    bins = np.clip(np.digitize(probabilities, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    table = []
    for index in range(CALIBRATION_BINS):
        members = bins == index
        count = int(members.sum())
        table.append(
            {
                "bin": f"{edges[index]:.1f}-{edges[index + 1]:.1f}",
                "count": count,
                "mean_predicted": _rounded(probabilities[members].mean()) if count else None,
                "observed_churn_rate": _rounded(labels[members].mean()) if count else None,
            }
        )
    return table


def classification_metrics(
    labels: Vector, probabilities: Vector, threshold: float
) -> dict[str, Any]:
    """AUC, PR-AUC, Brier, accuracy at 0.5, and accuracy/precision/recall at ``threshold``."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    both_classes = 0 < labels.sum() < len(labels)
    at_threshold = (probabilities >= threshold).astype(int)
    return {
        "rows": len(labels),
        "churn_rate": _rounded(labels.mean()),
        "auc": _rounded(roc_auc_score(labels, probabilities)) if both_classes else None,
        "pr_auc": _rounded(average_precision_score(labels, probabilities))
        if both_classes
        else None,
        "brier": _rounded(brier_score_loss(labels, probabilities)),
        "accuracy_at_0_5": _rounded(accuracy_score(labels, probabilities >= 0.5)),
        "threshold": threshold,
        "accuracy_at_threshold": _rounded(accuracy_score(labels, at_threshold)),
        "precision_at_threshold": _rounded(precision_score(labels, at_threshold, zero_division=0)),
        "recall_at_threshold": _rounded(recall_score(labels, at_threshold, zero_division=0)),
        "alerted_share_at_threshold": _rounded(at_threshold.mean()),
        "calibration": calibration_table(labels, probabilities),
    }


class MajorityBaseline:
    """Predicts the training churn rate for everyone (accuracy = the majority class share)."""

    name = "majority_class"
    description = "the training churn rate for every customer"

    def __init__(self, train_labels: Vector) -> None:
        self.rate = float(np.mean(train_labels))

    def predict(self, recency: Vector) -> Vector:
        """The same probability for every row."""
        return np.full(len(recency), self.rate)


class RecencyBaseline:
    """Churn probability as a monotone function of days since the last order alone.

    The function is fitted on the training rows (isotonic regression), so the rule is as good
    as a recency-only rule can be; a customer without orders counts as the longest absent.
    """

    name = "recency_rule"
    description = "isotonic fit of churn on days_since_last_order (training rows)"

    def __init__(self, train_recency: Vector, train_labels: Vector) -> None:
        self._fill = float(np.nanmax(train_recency)) + 1.0 if len(train_recency) else 0.0
        self._fit = IsotonicRegression(out_of_bounds="clip", increasing=True, y_min=0, y_max=1)
        self._fit.fit(self._filled(train_recency), train_labels)

    def _filled(self, recency: Vector) -> Vector:
        return np.where(np.isnan(recency), self._fill, recency)

    def predict(self, recency: Vector) -> Vector:
        """Churn probability from days since the last order."""
        return np.asarray(self._fit.predict(self._filled(recency)), dtype=np.float64)
