"""The Grafana dashboards, built as data and written as JSON into the Helm chart.

``python -m churnwire.deploy.dashboards`` rewrites ``charts/churnwire/files/dashboards/``;
``--check`` fails when the committed files differ from what this module builds, so the
JSON and this source never drift apart. Every panel's query goes through promtool in
``make deploy-check`` and through a real Prometheus in ``tests/test_deploy_monitoring.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "charts" / "churnwire" / "files" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Panel:
    """One panel: a title, its queries (PromQL, legend) and how to draw them."""

    title: str
    queries: tuple[tuple[str, str], ...]
    kind: str = "timeseries"
    unit: str = "short"
    width: int = 12
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: a stable uid, a title and rows of panels."""

    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {"refId": chr(ord("A") + index), "datasource": DATASOURCE, "expr": expr,
         "legendFormat": legend}
        for index, (expr, legend) in enumerate(panel.queries)
    ]
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}},
        "targets": targets,
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    """Grafana's JSON model of a dashboard, panels laid out left to right, top to bottom."""
    panels, x, y = [], 0, 0
    for panel_id, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y = 0, y + 8
        panels.append(_panel_json(panel, panel_id, x, y))
        x += panel.width
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["churnwire"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {},
        }]},
        "panels": panels,
    }


SYSTEM_HEALTH = Dashboard(
    uid="churnwire-system",
    title="churnwire / System health",
    description="Is every process up, how fast and how well does the gateway answer.",
    panels=(
        Panel("Targets up", (('sum by (job) (up{job=~".*churnwire.*"})', "{{job}}"),),
              kind="stat"),
        Panel("Gateway requests by route", (
            (f"sum by (route) (rate(churnwire_gateway_requests_total[{RATE}]))", "{{route}}"),
        ), unit="reqps"),
        Panel("Gateway latency p50 / p99 (API routes)", (
            ("histogram_quantile(0.5, sum by (le) (rate(churnwire_gateway_request_seconds_bucket"
             f'{{route=~"/v1/customers.*|/v1/alerts|/v1/events"}}[{RATE}])))', "p50"),
            ("histogram_quantile(0.99, sum by (le) (rate(churnwire_gateway_request_seconds_bucket"
             f'{{route=~"/v1/customers.*|/v1/alerts|/v1/events"}}[{RATE}])))', "p99"),
        ), unit="s"),
        Panel("Gateway 5xx share", (
            (f'sum(rate(churnwire_gateway_requests_total{{status=~"5.."}}[{RATE}])) '
             f"/ sum(rate(churnwire_gateway_requests_total[{RATE}]))", "5xx"),
        ), unit="percentunit"),
        Panel("Gateway refusals and unexpected errors", (
            (f"sum(rate(churnwire_gateway_rate_limited_total[{RATE}]))", "429 rate limited"),
            (f"sum(rate(churnwire_gateway_unexpected_errors_total[{RATE}]))", "unexpected"),
        ), unit="reqps"),
        Panel("CPU by process (worker, CDC)", (
            (f'sum by (job) (rate(process_cpu_seconds_total{{job=~".*churnwire.*"}}[{RATE}]))',
             "{{job}}"),
        ), unit="percentunit"),
        Panel("Resident memory by process (worker, CDC)", (
            ('sum by (job) (process_resident_memory_bytes{job=~".*churnwire.*"})', "{{job}}"),
        ), unit="bytes"),
    ),
)

STREAM_AND_CDC = Dashboard(
    uid="churnwire-stream",
    title="churnwire / Stream and CDC",
    description="From the PostgreSQL WAL to Redis: throughput, lag, dead letters, freshness.",
    panels=(
        Panel("CDC events forwarded to Kafka", (
            (f"sum by (topic) (rate(churnwire_cdc_events_forwarded_total[{RATE}]))", "{{topic}}"),
        ), unit="ops"),
        Panel("CDC batch time p99 (produce and flush)", (
            ("histogram_quantile(0.99, sum by (le) "
             f"(rate(churnwire_cdc_batch_seconds_bucket[{RATE}])))", "p99"),
        ), unit="s"),
        Panel("Worker events by outcome", (
            (f"sum by (outcome) (rate(churnwire_stream_events_total[{RATE}]))", "{{outcome}}"),
        ), unit="ops"),
        Panel("Consumer lag by topic", (
            ("max by (topic) (churnwire_consumer_lag)", "{{topic}}"),
        )),
        Panel("Dead letters by source topic", (
            (f"sum by (topic) (rate(churnwire_dead_letters_total[{RATE}]))", "{{topic}}"),
        ), unit="ops"),
        Panel("Redis apply time p99 (one batch)", (
            ("histogram_quantile(0.99, sum by (le) "
             f"(rate(churnwire_state_update_seconds_bucket[{RATE}])))", "p99"),
        ), unit="s"),
        Panel("Events per batch (median)", (
            ("histogram_quantile(0.5, sum by (le) "
             f"(rate(churnwire_stream_batch_size_bucket[{RATE}])))", "p50"),
        )),
        Panel("Watermark behind the wall clock", (
            ("time() - max(churnwire_watermark_seconds)", "event-time lag"),
        ), unit="s", description="Large during a historical replay; near zero for a live shop."),
        Panel("Unknown columns tolerated (schema drift)", (
            ("sum by (topic, column) (churnwire_schema_drift_columns_total)",
             "{{topic}}.{{column}}"),
        ), width=24),
    ),
)

MODEL = Dashboard(
    uid="churnwire-model",
    title="churnwire / Model performance and drift",
    description="Scores, champion against challenger, and drift against the training set.",
    panels=(
        Panel("Customers scored by variant", (
            (f"sum by (variant) (rate(churnwire_scores_total[{RATE}]))", "{{variant}}"),
        ), unit="ops"),
        Panel("Scoring time p99 (one batch)", (
            ("histogram_quantile(0.99, sum by (le) "
             f"(rate(churnwire_scoring_seconds_bucket[{RATE}])))", "p99"),
        ), unit="s"),
        Panel("Score distribution (probabilities written)", (
            (f"sum by (le) (increase(churnwire_churn_probability_bucket[{RATE}]))", "{{le}}"),
        ), kind="heatmap"),
        Panel("Online AUC (progressive validation)", (
            ("max by (variant) (churnwire_online_auc)", "{{variant}}"),
        ), unit="percentunit"),
        Panel("Score PSI against training", (
            ("max(churnwire_score_psi)", "score"),
        ), description="Above 0.25 is a strong shift; 0.1-0.25 worth watching."),
        Panel("Feature PSI against training", (
            ("max by (feature) (churnwire_feature_psi)", "{{feature}}"),
        )),
        Panel("Alerts raised by type and variant", (
            (f"sum by (type, variant) (rate(churnwire_alerts_total[{RATE}]))",
             "{{type}} {{variant}}"),
        ), unit="ops"),
        Panel("Labels learnt and sweep backlog", (
            (f"sum(rate(churnwire_labels_total[{RATE}]))", "labels learnt"),
            ("max(churnwire_sweep_due_customers)", "sweep due"),
        )),
        Panel("Model serving each variant", (
            ("max by (version, variant) (churnwire_model_info)", "{{variant}} {{version}}"),
        ), kind="table"),
        Panel("Model versions refused", (
            ("sum(churnwire_model_load_failures_total)", "refused"),
        ), kind="stat"),
    ),
)

INSIGHTS = Dashboard(
    uid="churnwire-insights",
    title="churnwire / Insights and cost",
    description="The insight worker: volume, failures, latency, tokens, dollars and budget.",
    panels=(
        Panel("Insights by generator", (
            (f"sum by (generator) (rate(churnwire_insights_total[{RATE}]))", "{{generator}}"),
        ), unit="ops"),
        Panel("Insight failures by reason", (
            (f"sum by (reason) (rate(churnwire_insight_failures_total[{RATE}]))", "{{reason}}"),
        ), unit="ops"),
        Panel("Insight time p95", (
            ("histogram_quantile(0.95, sum by (le) "
             f"(rate(churnwire_insight_seconds_bucket[{RATE}])))", "p95"),
        ), unit="s"),
        Panel("Tokens per hour", (
            ("sum(increase(churnwire_insight_tokens_total[1h]))", "tokens"),
        )),
        Panel("Model spend, last 24 hours", (
            ("sum(increase(churnwire_insight_cost_dollars_total[1d]))", "dollars"),
        ), kind="stat", unit="currencyUSD"),
        Panel("Token budget remaining today", (
            ("min(churnwire_insight_budget_remaining_tokens)", "remaining"),
        ), kind="stat"),
    ),
)

BUSINESS = Dashboard(
    uid="churnwire-business",
    title="churnwire / Customers at risk",
    description="The whole shop by segment and risk band of each customer's latest score.",
    panels=(
        Panel("Customers in the high band", (
            ('sum(max by (segment) (churnwire_customers_at_risk{risk_band="high"}))', "high"),
        ), kind="stat", width=8),
        Panel("Share of scored customers in the high band", (
            ('sum(max by (segment) (churnwire_customers_at_risk{risk_band="high"})) '
             "/ sum(max by (segment, risk_band) (churnwire_customers_at_risk))", "share"),
        ), kind="stat", unit="percentunit", width=8),
        Panel("Churn-risk alerts, last 24 hours", (
            ('sum(increase(churnwire_alerts_total{type="churn_risk"}[1d]))', "alerts"),
        ), kind="stat", width=8),
        Panel("Customers by segment and risk band", (
            ("max by (segment, risk_band) (churnwire_customers_at_risk)",
             "{{segment}} {{risk_band}}"),
        ), kind="bargauge", width=24),
        Panel("High-band customers over time, by segment", (
            ('max by (segment) (churnwire_customers_at_risk{risk_band="high"})', "{{segment}}"),
        ), width=24),
    ),
)

DASHBOARDS = (SYSTEM_HEALTH, STREAM_AND_CDC, MODEL, INSIGHTS, BUSINESS)


def rendered() -> dict[str, str]:
    """File name to JSON text of every dashboard."""
    return {
        f"{dashboard.uid}.json": json.dumps(dashboard_json(dashboard), indent=2) + "\n"
        for dashboard in DASHBOARDS
    }


def panel_expressions() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expression) of every query of every panel."""
    return [
        (dashboard.uid, panel.title, expr)
        for dashboard in DASHBOARDS
        for panel in dashboard.panels
        for expr, _legend in panel.queries
    ]


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with --check report whether the written ones are current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, text in rendered().items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale dashboards (run python -m churnwire.deploy.dashboards): "
              + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
