"""XGBoost hyperparameters chosen on a validation split of the training customers only."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score
from xgboost import XGBClassifier

log = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float32]
Vector = npt.NDArray[np.float64]

BASE_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "n_jobs": 2,
}
MAX_ROUNDS = 800
EARLY_STOPPING_ROUNDS = 50
# Shallow to deeper trees, more regularised as they deepen; small on purpose: each is one fit.
CANDIDATES: tuple[dict[str, Any], ...] = (
    {"max_depth": 2, "min_child_weight": 1.0, "reg_lambda": 1.0},
    {"max_depth": 3, "min_child_weight": 5.0, "reg_lambda": 1.0},
    {"max_depth": 4, "min_child_weight": 10.0, "reg_lambda": 5.0},
    {"max_depth": 6, "min_child_weight": 20.0, "reg_lambda": 10.0},
)


@dataclass(frozen=True)
class Trial:
    """One candidate's validation AUC and its early-stopped number of trees."""

    params: dict[str, Any]
    validation_auc: float
    trees: int
    seconds: float


def fit_candidate(
    params: dict[str, Any],
    train: tuple[Matrix, Vector],
    validation: tuple[Matrix, Vector],
    seed: int,
) -> tuple[XGBClassifier, Trial]:
    """Fit with early stopping on the validation rows; report their AUC."""
    started = time.monotonic()
    classifier = XGBClassifier(
        **BASE_PARAMS, **params, n_estimators=MAX_ROUNDS,
        early_stopping_rounds=EARLY_STOPPING_ROUNDS, random_state=seed,
    )
    classifier.fit(train[0], train[1], eval_set=[validation], verbose=False)
    trees = int(classifier.best_iteration) + 1
    probabilities = classifier.predict_proba(validation[0], iteration_range=(0, trees))[:, 1]
    auc = float(roc_auc_score(validation[1], probabilities))
    trial = Trial(params, round(auc, 5), trees, round(time.monotonic() - started, 2))
    log.info("candidate %s: validation AUC %.4f with %d trees", params, auc, trees)
    return classifier, trial


def choose_params(
    train: tuple[Matrix, Vector],
    validation: tuple[Matrix, Vector],
    seed: int,
    candidates: Sequence[dict[str, Any]] = CANDIDATES,
) -> tuple[dict[str, Any], list[Trial]]:
    """The candidate with the best validation AUC, with its number of trees."""
    trials = [fit_candidate(params, train, validation, seed)[1] for params in candidates]
    best = max(trials, key=lambda trial: trial.validation_auc)
    return {**best.params, "n_estimators": best.trees}, trials


def fit_final(params: dict[str, Any], train: tuple[Matrix, Vector], seed: int) -> XGBClassifier:
    """The model on all training customers with the chosen parameters."""
    classifier = XGBClassifier(**BASE_PARAMS, **params, random_state=seed)
    classifier.fit(train[0], train[1], verbose=False)
    return classifier
