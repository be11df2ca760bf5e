"""The champion model as the worker scores with it: ONNX Runtime, plus XGBoost for reasons."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from churnwire.models.drift import DriftMonitor
from churnwire.models.vectorize import feature_matrix

log = logging.getLogger(__name__)

ONNX_INPUT = "features"
ONNX_PROBABILITIES = "probabilities"


def onnx_session(model: bytes) -> ort.InferenceSession:
    """An ONNX Runtime session on one thread: the worker scores inline, one batch at a time."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class ChampionModel:
    """A registered model version, ready to score feature rows."""

    def __init__(
        self,
        version: str,
        session: ort.InferenceSession,
        columns: Sequence[str],
        categories: Mapping[str, Sequence[str]],
        threshold: float,
        booster_path: Path,
        drift_reference: Mapping[str, Any] | None = None,
    ) -> None:
        self.version = version
        self.columns: tuple[str, ...] = tuple(columns)
        self.categories: dict[str, list[str]] = {k: list(v) for k, v in categories.items()}
        self.threshold = threshold
        self._session = session
        self._booster_path = booster_path
        self._booster: Any = None
        self._booster_lock = threading.Lock()
        # Models trained before drift references existed have none: no drift gauges then.
        self.drift = DriftMonitor(drift_reference, self.columns) if drift_reference else None

    def __repr__(self) -> str:
        return f"ChampionModel({self.version!r}, {len(self.columns)} columns)"

    def matrix(self, rows: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float32]:
        """The model input of ``rows``."""
        return feature_matrix(rows, self.columns, self.categories)

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float64]:
        """Churn probability of each row, in one ONNX Runtime call for the whole batch."""
        if not rows:
            return np.empty(0, dtype=np.float64)
        return self.predict_matrix(self.matrix(rows))

    def predict_matrix(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Churn probability of each row of an already encoded matrix."""
        (probabilities,) = self._session.run([ONNX_PROBABILITIES], {ONNX_INPUT: matrix})
        return np.asarray(probabilities[:, 1], dtype=np.float64)

    def booster(self) -> Any:
        """The XGBoost booster saved beside the ONNX file (loaded on first use)."""
        with self._booster_lock:
            if self._booster is None:
                import xgboost

                booster = xgboost.Booster()
                booster.load_model(str(self._booster_path))
                self._booster = booster
            return self._booster

    def top_contributions(self, row: Mapping[str, Any], k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` features pushing this row's churn log-odds up the most (SHAP values)."""
        return self.top_contributions_batch([row], k)[0]

    def top_contributions_batch(
        self, rows: Sequence[Mapping[str, Any]], k: int = 5
    ) -> list[list[dict[str, Any]]]:
        """:meth:`top_contributions` of many rows with one booster call."""
        import xgboost

        if not rows:
            return []
        matrix = self.matrix(rows)
        contributions = self.booster().predict(xgboost.DMatrix(matrix), pred_contribs=True)
        # The last column is the bias (the model's base log-odds), not a feature.
        return [
            _ranked(self.columns, matrix[index], contributions[index][:-1], k)
            for index in range(len(rows))
        ]


def _ranked(
    columns: Sequence[str], values: Any, contributions: Any, k: int
) -> list[dict[str, Any]]:
    ranked = sorted(zip(columns, values, contributions, strict=True),
                    key=lambda item: -float(item[2]))
    return [
        {
            "feature": column,
            "value": None if math.isnan(float(value)) else float(value),
            "contribution": round(float(contribution), 6),
        }
        for column, value, contribution in ranked[:k]
    ]
