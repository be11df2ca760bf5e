"""Prometheus metrics of the insight worker (served on ``CHURNWIRE_INSIGHTS_METRICS_PORT``).

The names are a contract: alert rules and dashboards are written against them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class InsightMetrics:
    """The worker's counters, gauges and histograms, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.insights = Counter(
            "churnwire_insights_total", "insights stored, by generator (model or rules)",
            ["generator"], registry=self.registry,
        )
        self.failures = Counter(
            "churnwire_insight_failures_total",
            "model attempts that did not give an insight, by reason", ["reason"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "churnwire_insight_seconds", "alert publication to stored insight, seconds",
            buckets=(0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60, 120, 300),
            registry=self.registry,
        )
        self.tokens = Counter(
            "churnwire_insight_tokens_total", "model tokens used (prompt and completion)",
            registry=self.registry,
        )
        self.cost = Counter(
            "churnwire_insight_cost_dollars_total", "model cost by litellm's accounting",
            registry=self.registry,
        )
        self.budget_remaining = Gauge(
            "churnwire_insight_budget_remaining_tokens", "tokens left in today's budget",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "churnwire_insight_duplicates_total", "redelivered alerts that already had an insight",
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "churnwire_insight_cache_hits_total", "insights reused for the same drivers",
            registry=self.registry,
        )
        self.breaker_open = Gauge(
            "churnwire_insight_breaker_open", "1 while the model circuit breaker is open",
            registry=self.registry,
        )
        self.retrieval_seconds = Histogram(
            "churnwire_insight_retrieval_seconds", "knowledge base search, seconds",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1), registry=self.registry,
        )
