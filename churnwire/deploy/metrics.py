"""Which metrics the alert rules and dashboards use, and which of them are still to come.

The rules (``charts/churnwire/files/prometheus/churnwire-rules.yaml``) and the dashboards
(:mod:`churnwire.deploy.dashboards`) may only use metrics that churnwire exports; the test
``tests/test_deploy_monitoring.py`` scrapes a running stack with a real Prometheus to prove it.
``PENDING_METRICS`` is the one list of names they use before the component exporting them is
merged; that test reports each as expected-missing rather than passing silently.
"""

from __future__ import annotations

import re

# Every component the rules and dashboards read is merged; a name added here while its
# exporter is still being built is reported by the test as expected-missing.
PENDING_METRICS: dict[str, str] = {}

_METRIC = re.compile(r"\b((?:churnwire|process)_[a-z0-9_]+)\b|\b(up)\s*\{")
# Grafana variables are not PromQL: promtool and Prometheus see a fixed window instead.
_GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def metric_names(expression: str) -> set[str]:
    """Names of the metrics a PromQL expression reads (churnwire_*, process_* and up)."""
    return {first or second for first, second in _METRIC.findall(expression)}


def as_promql(expression: str) -> str:
    """The expression with Grafana's interval variables replaced by fixed windows."""
    for variable, window in _GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, window)
    return expression
