"""The online challenger: a River model that learns as churn outcomes become known.

It predicts from the same features as the champion and learns one labelled moment at a time
(see :mod:`churnwire.models.outcomes`). Before each moment is learnt, both variants' scores of
it are checked against the label: progressive validation, so its AUC is honest without a
held-out set. The whole object (model and metrics) is checkpointed to Redis as one value.
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from river import compose, linear_model, metrics, optim, preprocessing

from churnwire.state.features import NUMERIC_FEATURES

VARIANTS = ("champion", "challenger")
AUC_THRESHOLDS = 50


def online_features(features: Mapping[str, Any]) -> dict[str, float]:
    """The challenger's inputs: numeric features that are known, booleans as 0/1."""
    inputs = {name: float(features[name]) for name in NUMERIC_FEATURES
              if features.get(name) is not None}
    inputs["marketing_opt_in"] = 1.0 if features.get("marketing_opt_in") else 0.0
    return inputs


def _new_model() -> compose.Pipeline:
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(0.02)),
    )


def _new_auc() -> dict[str, metrics.ROCAUC]:
    return {variant: metrics.ROCAUC(n_thresholds=AUC_THRESHOLDS) for variant in VARIANTS}


@dataclass
class Challenger:
    """StandardScaler | LogisticRegression, with progressive-validation AUC per variant."""

    model: compose.Pipeline = field(default_factory=_new_model)
    auc: dict[str, metrics.ROCAUC] = field(default_factory=_new_auc)
    labels: int = 0
    churned: int = 0

    @property
    def version(self) -> str:
        """Names the model and how much it has learnt."""
        return f"river-logreg@{self.labels}"

    def predict(self, inputs: Sequence[Mapping[str, float]]) -> list[float]:
        """Churn probability of each input."""
        return [self.model.predict_proba_one(dict(row)).get(True, 0.5) for row in inputs]

    def learn(self, inputs: Mapping[str, float], churned: bool, champion: float | None) -> None:
        """Check both variants against the outcome, then learn it."""
        challenger = self.model.predict_proba_one(dict(inputs)).get(True, 0.5)
        self.auc["challenger"].update(churned, challenger)
        if champion is not None:
            self.auc["champion"].update(churned, champion)
        self.model.learn_one(dict(inputs), churned)
        self.labels += 1
        self.churned += int(churned)

    def auc_of(self, variant: str) -> float | None:
        """Progressive-validation AUC of a variant, None before both classes were seen."""
        if self.labels == 0 or self.churned in (0, self.labels):
            return None
        return float(self.auc[variant].get())

    def to_checkpoint(self) -> str:
        """The checkpoint form (text, so it sits in Redis beside the other state)."""
        return base64.b64encode(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)).decode()

    @staticmethod
    def from_checkpoint(payload: str | None) -> Challenger:
        """A checkpoint read back, or a fresh challenger when there is none."""
        if not payload:
            return Challenger()
        # The checkpoint is churnwire's own state in churnwire's Redis, never outside input.
        restored = pickle.loads(base64.b64decode(payload))
        if not isinstance(restored, Challenger):
            raise TypeError("the challenger checkpoint holds something else")
        return restored
