"""Prometheus metrics of scoring, the challenger and alerts (served by the worker's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SCORES = Counter("churnwire_scores", "Customers scored, by variant", ["variant"])
SCORING_SECONDS = Histogram(
    "churnwire_scoring_seconds",
    "Time to score one batch of customers (read state, features, both models, write)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CHURN_PROBABILITY = Histogram(
    "churnwire_churn_probability",
    "Churn probabilities written, by the variant that produced them",
    ["variant"],
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)
ALERTS = Counter(
    "churnwire_alerts", "Alerts raised (churn_risk or recovered), by variant", ["type", "variant"]
)
ALERTS_PUBLISHED = Counter(
    "churnwire_alerts_published", "Alert messages acknowledged by the churn-alerts topic"
)
ALERTS_RECOVERED_AS_SENT = Counter(
    "churnwire_alerts_found_already_sent",
    "In-flight alerts found on the topic after a restart, so not sent again",
)
SWEEP_RESCORED = Counter(
    "churnwire_sweep_rescored", "Customers re-scored by the inactivity sweep without a new event"
)
SWEEP_DUE = Gauge(
    "churnwire_sweep_due_customers", "Customers whose inactivity check is due and not yet done"
)
LABELS = Counter("churnwire_labels", "Scored moments whose horizon closed and were learnt")
ONLINE_AUC = Gauge(
    "churnwire_online_auc",
    "Progressive-validation AUC on labels as they arrive, by variant",
    ["variant"],
)
MODEL_INFO = Gauge(
    "churnwire_model_info", "The model serving each variant (value 1)", ["version", "variant"]
)
MODEL_LOAD_FAILURES = Counter(
    "churnwire_model_load_failures", "Active models the worker refused to load (old one kept)"
)
CUSTOMERS_AT_RISK = Gauge(
    "churnwire_customers_at_risk",
    "Customers by segment and the risk band of their latest score (the whole shop, read from "
    "Redis: every worker reports the same numbers, aggregate with max)",
    ["segment", "risk_band"],
)
FEATURE_PSI = Gauge(
    "churnwire_feature_psi",
    "Population stability index of a numeric model input: the newest scored rows against the "
    "training set (churnwire.models.drift)",
    ["feature"],
)
SCORE_PSI = Gauge(
    "churnwire_score_psi",
    "Population stability index of the newest champion scores against the held-out scores "
    "of training",
)
