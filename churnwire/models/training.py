"""``churnwire train``: labeled rows at cutoffs, a customer split, XGBoost, ONNX, a model card.

Rows come from the offline feature builder at each cutoff, labels from the orders after it.
The last (latest) cutoff is the evaluated one: the metrics are measured on customers held out
at that cutoff, who appear at no cutoff of the training rows. With ``strict_time`` only
cutoffs whose label window ends by the evaluated cutoff give training rows, so nothing after
the evaluated cutoff is used for training; otherwise the training customers' rows at the
evaluated cutoff (labelled from the horizon after it) are used too, the usual customer split.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from churnwire.config import Settings
from churnwire.models import card as model_card
from churnwire.models import plots
from churnwire.models.dataset import LabeledRow, labeled_rows, rows_of, split_customers
from churnwire.models.drift import drift_reference
from churnwire.models.export import PARITY_TOLERANCE, check_parity, save_booster, to_onnx
from churnwire.models.labels import label_window_text
from churnwire.models.metrics import MajorityBaseline, RecencyBaseline, classification_metrics
from churnwire.models.registry import (
    BOOSTER_FILE,
    CARD_JSON,
    CARD_MARKDOWN,
    ONNX_FILE,
    ModelRegistry,
    new_version,
)
from churnwire.models.tuning import BASE_PARAMS, choose_params, fit_final
from churnwire.models.vectorize import feature_columns, feature_matrix, learn_categories
from churnwire.state.features import FEATURES
from churnwire.timeutil import end_of_day_micros

log = logging.getLogger(__name__)

VALIDATION_SHARE = 0.2
MODEL_TYPE = "XGBoost gradient-boosted trees (binary:logistic)"


class TrainingError(ValueError):
    """The training set cannot be built or trained on as asked."""


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced."""

    version: str
    card: dict[str, Any]
    path: Path
    registered: bool


@dataclass(frozen=True)
class _Split:
    train: list[LabeledRow]
    test: list[LabeledRow]
    train_customers: set[str]
    test_customers: set[str]
    training_cutoffs: list[date]
    protocol: str


def _labels(rows: Sequence[LabeledRow]) -> npt.NDArray[np.float64]:
    return np.array([row.churned for row in rows], dtype=np.float64)


def _recency(rows: Sequence[LabeledRow]) -> npt.NDArray[np.float64]:
    values = [row.features.get("days_since_last_order") for row in rows]
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _training_cutoffs(
    cutoffs: Sequence[date], horizon_days: int, strict_time: bool
) -> tuple[date, list[date]]:
    ordered = sorted(set(cutoffs))
    if not ordered:
        raise TrainingError("give at least one cutoff")
    evaluated = ordered[-1]
    if not strict_time:
        return evaluated, ordered
    horizon = timedelta(days=horizon_days)
    known = [cutoff for cutoff in ordered if cutoff + horizon <= evaluated]
    if not known:
        raise TrainingError(
            f"strict time: no cutoff's {horizon_days}-day label window ends by the evaluated "
            f"cutoff {evaluated}; add one on or before {evaluated - horizon}"
        )
    return evaluated, known


def _split(
    by_cutoff: dict[date, list[LabeledRow]],
    evaluated: date,
    training_cutoffs: list[date],
    holdout: float,
    seed: int,
    strict_time: bool,
) -> _Split:
    every_customer = {row.customer_id for rows in by_cutoff.values() for row in rows}
    train_customers, test_customers = split_customers(every_customer, holdout, seed)
    train = [row for c in training_cutoffs for row in rows_of(by_cutoff[c], train_customers)]
    test = rows_of(by_cutoff[evaluated], test_customers)
    if strict_time:
        protocol = (
            "strict time: training rows come only from cutoffs whose label window ends by the "
            "evaluated cutoff, so no training label uses data after it; test rows are the held-"
            "out customers at the evaluated cutoff"
        )
    else:
        protocol = (
            "customer split: training rows are the training customers at every cutoff "
            "(including the evaluated one, labelled from the horizon after it); test rows are "
            "the held-out customers at the evaluated cutoff"
        )
    if not train or not test:
        raise TrainingError(f"too few customers to split: {len(train)} train, {len(test)} test")
    for name, rows in (("training", train), ("test", test)):
        if len({row.churned for row in rows}) < 2:
            raise TrainingError(f"the {name} rows have only one class; choose other cutoffs")
    return _Split(train, test, train_customers, test_customers, training_cutoffs, protocol)


def _validation_split(
    rows: list[LabeledRow], latest: date, seed: int
) -> tuple[list[LabeledRow], list[LabeledRow]]:
    """Inner split of the training customers: validation rows at the latest training cutoff."""
    fit_customers, validation_customers = split_customers(
        {row.customer_id for row in rows}, VALIDATION_SHARE, seed + 1
    )
    fit = rows_of(rows, fit_customers)
    validation = [row for row in rows_of(rows, validation_customers) if row.cutoff == latest]
    return fit, validation


def train_model(
    settings: Settings,
    cutoffs: Sequence[date],
    horizon_days: int,
    holdout: float = 0.2,
    seed: int = 7,
    *,
    strict_time: bool = False,
    register: bool = True,
) -> TrainResult:
    """Train, check ONNX parity, write the artifact and card; register it unless told not to.

    The first model registered while none is active becomes the active one.
    """
    started = time.monotonic()
    evaluated, training_cutoffs = _training_cutoffs(cutoffs, horizon_days, strict_time)
    needed = sorted({*training_cutoffs, evaluated})
    by_cutoff = {c: labeled_rows(settings.postgres_url, c, horizon_days) for c in needed}
    split = _split(by_cutoff, evaluated, training_cutoffs, holdout, seed, strict_time)

    categories = learn_categories(row.features for row in split.train)
    columns = feature_columns(categories)

    def encode(rows: Sequence[LabeledRow]) -> npt.NDArray[np.float32]:
        return feature_matrix([row.features for row in rows], columns, categories)

    fit_rows, validation_rows = _validation_split(split.train, training_cutoffs[-1], seed)
    params, trials = choose_params(
        (encode(fit_rows), _labels(fit_rows)),
        (encode(validation_rows), _labels(validation_rows)),
        seed,
    )
    train_matrix, train_labels = encode(split.train), _labels(split.train)
    classifier = fit_final(params, (train_matrix, train_labels), seed)

    test_matrix, test_labels = encode(split.test), _labels(split.test)
    onnx_model = to_onnx(classifier, len(columns))
    gap = check_parity(onnx_model, classifier, test_matrix)
    probabilities = classifier.predict_proba(test_matrix)[:, 1].astype(np.float64)

    version = new_version()
    registry = ModelRegistry(settings.model_dir)
    staging = registry.staging_folder(version)
    try:
        card = _card(
            version, settings, horizon_days, holdout, seed, evaluated, split, by_cutoff,
            columns, categories, params, trials, classifier, gap, test_labels, probabilities,
        )
        # The training rows' inputs and the held-out scores: what drift is measured against.
        card["drift_reference"] = drift_reference(train_matrix, columns, probabilities)
        _write_artifact(staging, onnx_model, classifier, card, split, test_labels, probabilities)
        card["training_seconds"] = round(time.monotonic() - started, 1)
        (staging / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n")
        if not register:
            return TrainResult(version, card, staging, registered=False)
        registry.register(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if registry.active_version() is None:
        registry.promote(version)
    log.info(
        "trained model %s in %.1f s: held-out AUC %s, accuracy %s",
        version, time.monotonic() - started, card["metrics"]["model"]["auc"],
        card["metrics"]["model"]["accuracy_at_0_5"],
    )
    return TrainResult(version, card, settings.model_dir / version, registered=True)


def _baselines(
    split: _Split, test_labels: npt.NDArray[np.float64]
) -> dict[str, tuple[Any, npt.NDArray[np.float64]]]:
    majority = MajorityBaseline(_labels(split.train))
    recency = RecencyBaseline(_recency(split.train), _labels(split.train))
    test_recency = _recency(split.test)
    return {
        baseline.name: (baseline, baseline.predict(test_recency))
        for baseline in (majority, recency)
    }


def _card(
    version: str,
    settings: Settings,
    horizon_days: int,
    holdout: float,
    seed: int,
    evaluated: date,
    split: _Split,
    by_cutoff: dict[date, list[LabeledRow]],
    columns: tuple[str, ...],
    categories: dict[str, list[str]],
    params: dict[str, Any],
    trials: list[Any],
    classifier: Any,
    gap: float,
    test_labels: npt.NDArray[np.float64],
    probabilities: npt.NDArray[np.float64],
) -> dict[str, Any]:
    threshold = settings.alert_threshold
    baselines = _baselines(split, test_labels)
    descriptions = {spec.name: spec.description for spec in FEATURES}
    return {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "type": MODEL_TYPE,
            "params": {**BASE_PARAMS, **params},
            "tuning": [trial.__dict__ for trial in trials],
        },
        "horizon_days": horizon_days,
        "threshold": threshold,
        "columns": list(columns),
        "categories": categories,
        "feature_descriptions": {
            column: descriptions.get(column.partition("=")[0], "") for column in columns
        },
        "data": {
            "evaluated_cutoff": evaluated.isoformat(),
            "training_cutoffs": [c.isoformat() for c in split.training_cutoffs],
            "as_of": {c.isoformat(): end_of_day_micros(c) for c in by_cutoff},
            "label_windows": {
                c.isoformat(): label_window_text(end_of_day_micros(c), horizon_days)
                for c in by_cutoff
            },
            "rows_per_cutoff": {c.isoformat(): len(rows) for c, rows in by_cutoff.items()},
            "protocol": split.protocol,
            "holdout": holdout,
            "seed": seed,
            "train_customers": len(split.train_customers),
            "test_customers": len(split.test_customers),
            "train_rows": len(split.train),
            "test_rows": len(split.test),
        },
        "metrics": {
            "model": classification_metrics(test_labels, probabilities, threshold),
            "baselines": {
                name: classification_metrics(test_labels, predicted, threshold)
                for name, (_, predicted) in baselines.items()
            },
        },
        "baselines": [
            {"name": baseline.name, "description": baseline.description}
            for baseline, _ in baselines.values()
        ],
        "parity": {"max_abs_diff": gap, "rows": len(test_labels), "tolerance": PARITY_TOLERANCE},
        "feature_importance": _importance(classifier, columns),
        "libraries": {
            name: importlib.metadata.version(name)
            for name in ("xgboost-cpu", "onnxruntime", "onnxmltools", "onnx", "scikit-learn")
        },
    }


def _importance(classifier: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    gains = classifier.get_booster().get_score(importance_type="gain")
    named = [(columns[int(key[1:])], float(value)) for key, value in gains.items()]
    named.sort(key=lambda item: -item[1])
    return [{"feature": name, "gain": round(gain, 4)} for name, gain in named[:10]]


def _write_artifact(
    folder: Path,
    onnx_model: bytes,
    classifier: Any,
    card: dict[str, Any],
    split: _Split,
    test_labels: npt.NDArray[np.float64],
    probabilities: npt.NDArray[np.float64],
) -> None:
    (folder / ONNX_FILE).write_bytes(onnx_model)
    save_booster(classifier, folder / BOOSTER_FILE)
    recency = RecencyBaseline(_recency(split.train), _labels(split.train))
    scores = {"model": probabilities, "recency rule": recency.predict(_recency(split.test))}
    title = f"held-out customers at {card['data']['evaluated_cutoff']}"
    plots.plot_roc(test_labels, scores, f"ROC, {title}", folder / "roc.png")
    plots.plot_calibration(test_labels, scores, f"Calibration, {title}", folder / "calibration.png")
    (folder / CARD_MARKDOWN).write_text(model_card.render_markdown(card))
