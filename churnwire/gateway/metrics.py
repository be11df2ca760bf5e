"""Prometheus metrics of the gateway, labelled by route template (never the raw path)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25,
                   0.5, 1.0, 2.5)
UNMATCHED_ROUTE = "unmatched"


class GatewayMetrics:
    """The gateway's counters and histograms, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "churnwire_gateway_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "churnwire_gateway_request_seconds",
            "Time from request to the end of the response, by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "churnwire_gateway_rate_limited",
            "Requests refused with 429 because their key exceeded its rate",
            registry=self.registry,
        )
        self.unexpected_errors = Counter(
            "churnwire_gateway_unexpected_errors",
            "Requests that failed with an unexpected error (answered 503 and logged)",
            registry=self.registry,
        )
        self.alerts_streamed = Counter(
            "churnwire_gateway_alerts_streamed",
            "Alert messages sent to server-sent-event subscribers",
            registry=self.registry,
        )
