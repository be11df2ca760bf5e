"""The River challenger: it learns, validates progressively and survives a checkpoint."""

from __future__ import annotations

import random

from churnwire.models.online import Challenger, online_features


def _moment(rng: random.Random) -> tuple[dict[str, float], bool]:
    churned = rng.random() < 0.5
    days = rng.uniform(60, 300) if churned else rng.uniform(0, 90)
    return online_features({"days_since_last_order": days, "orders_lifetime": 3}), churned


def test_it_learns_a_separable_outcome_and_reports_progressive_auc() -> None:
    rng = random.Random(3)
    challenger = Challenger()
    assert challenger.auc_of("challenger") is None
    for _ in range(2000):
        inputs, churned = _moment(rng)
        challenger.learn(inputs, churned, champion=0.9 if churned else 0.1)
    auc = challenger.auc_of("challenger")
    assert auc is not None and auc > 0.85
    assert challenger.auc_of("champion") == 1.0
    assert challenger.labels == 2000 and challenger.version == "river-logreg@2000"
    [late] = challenger.predict([online_features({"days_since_last_order": 280.0,
                                                  "orders_lifetime": 3})])
    [recent] = challenger.predict([online_features({"days_since_last_order": 5.0,
                                                    "orders_lifetime": 3})])
    assert late > 0.7 > 0.3 > recent


def test_a_checkpoint_restores_the_model_and_its_metrics() -> None:
    rng = random.Random(4)
    challenger = Challenger()
    for _ in range(300):
        challenger.learn(*_moment(rng), champion=None)
    restored = Challenger.from_checkpoint(challenger.to_checkpoint())
    probe = [online_features({"days_since_last_order": 100.0})]
    assert restored.predict(probe) == challenger.predict(probe)
    assert restored.labels == 300 and restored.auc_of("challenger") == challenger.auc_of(
        "challenger"
    )
    assert Challenger.from_checkpoint(None).labels == 0


def test_unknown_features_are_left_out_not_zeroed() -> None:
    inputs = online_features({"days_since_last_order": None, "orders_lifetime": 2,
                              "marketing_opt_in": True, "segment": "vip"})
    assert "days_since_last_order" not in inputs and "segment" not in inputs
    assert inputs["orders_lifetime"] == 2.0 and inputs["marketing_opt_in"] == 1.0
