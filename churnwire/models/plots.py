"""The ROC and calibration plots of a model card (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_curve

Vector = npt.NDArray[np.float64]


def plot_roc(labels: Vector, scores: Mapping[str, Vector], title: str, path: Path) -> None:
    """ROC curves of the model and its baselines on the held-out customers."""
    figure, axes = plt.subplots(figsize=(5.5, 5), dpi=100)
    for name, probabilities in scores.items():
        if 0 < labels.sum() < len(labels):
            false_positive, true_positive, _ = roc_curve(labels, probabilities)
            axes.plot(false_positive, true_positive, label=name)
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_calibration(labels: Vector, scores: Mapping[str, Vector], title: str, path: Path) -> None:
    """Observed churn rate against predicted probability, ten bins."""
    figure, axes = plt.subplots(figsize=(5.5, 5), dpi=100)
    for name, probabilities in scores.items():
        observed, predicted = calibration_curve(labels, probabilities, n_bins=10)
        axes.plot(predicted, observed, marker="o", label=name)
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect")
    axes.set(xlabel="mean predicted churn probability", ylabel="observed churn rate",
             title=title, xlim=(0, 1), ylim=(0, 1))
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
