"""XGBoost to ONNX, and the parity gate a model must pass before it is registered."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType

from churnwire.models.champion import ONNX_INPUT, ONNX_PROBABILITIES, onnx_session

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-5


class ParityFailed(RuntimeError):
    """ONNX Runtime and XGBoost disagree on the same rows: the export cannot be trusted."""


def to_onnx(classifier: Any, width: int) -> bytes:
    """The serialized ONNX model of a fitted ``XGBClassifier`` taking ``width`` features."""
    model = convert_xgboost(
        classifier, initial_types=[(ONNX_INPUT, FloatTensorType([None, width]))]
    )
    return bytes(model.SerializeToString())


def parity_gap(
    onnx_model: bytes, classifier: Any, matrix: npt.NDArray[np.float32]
) -> float:
    """Largest absolute difference in churn probability between ONNX Runtime and XGBoost."""
    session = onnx_session(onnx_model)
    (onnx_probabilities,) = session.run([ONNX_PROBABILITIES], {ONNX_INPUT: matrix})
    native = classifier.predict_proba(matrix)[:, 1]
    return float(np.max(np.abs(onnx_probabilities[:, 1].astype(np.float64) - native)))


def check_parity(
    onnx_model: bytes,
    classifier: Any,
    matrix: npt.NDArray[np.float32],
    tolerance: float = PARITY_TOLERANCE,
) -> float:
    """The parity gap on ``matrix``; raises ParityFailed above ``tolerance``."""
    if len(matrix) == 0:
        raise ParityFailed("no rows to check ONNX parity on")
    gap = parity_gap(onnx_model, classifier, matrix)
    log.info("ONNX parity on %d rows: max abs difference %.2e", len(matrix), gap)
    if not gap <= tolerance:
        raise ParityFailed(
            f"ONNX Runtime and XGBoost differ by up to {gap:.3g} in churn probability on "
            f"{len(matrix)} held-out rows (allowed {tolerance:g}); the model is not registered"
        )
    return gap


def save_booster(classifier: Any, path: Path) -> None:
    """Save the booster as XGBoost JSON, for contributions at alert time."""
    classifier.get_booster().save_model(str(path))
