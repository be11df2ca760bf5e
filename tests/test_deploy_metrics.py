"""The metric inventory: names read from PromQL, and Grafana variables made PromQL."""

from __future__ import annotations

from churnwire.deploy.dashboards import panel_expressions, rendered
from churnwire.deploy.metrics import PENDING_METRICS, as_promql, metric_names


def test_names_come_from_selectors_not_from_labels_or_functions() -> None:
    expr = ('histogram_quantile(0.99, sum by (le) (rate(churnwire_gateway_request_seconds_bucket'
            '{route=~"/v1/.*"}[5m]))) > 0.05 or up{job=~".*churnwire.*"} == 0 '
            'or rate(process_cpu_seconds_total[1m]) > 0')
    assert metric_names(expr) == {
        "churnwire_gateway_request_seconds_bucket", "up", "process_cpu_seconds_total"}
    assert metric_names('sum(rate(churnwire_dead_letters_total{topic="churnwire.dlq"}[5m]))') == {
        "churnwire_dead_letters_total"}


def test_grafana_intervals_become_fixed_windows() -> None:
    assert as_promql("rate(x[$__rate_interval]) + increase(y[$__range])") == (
        "rate(x[5m]) + increase(y[1h])")


def test_every_dashboard_is_rendered_with_its_queries() -> None:
    files = rendered()
    assert len(files) == 5
    for _uid, title, expr in panel_expressions():
        assert metric_names(expr), title


def test_pending_metrics_are_the_insight_workers_only() -> None:
    assert all(name.startswith("churnwire_insight") for name in PENDING_METRICS)


def _alerts() -> list[dict[str, object]]:
    import yaml

    from tests.conftest import REPO

    rules = REPO / "charts" / "churnwire" / "files" / "prometheus" / "churnwire-rules.yaml"
    groups = yaml.safe_load(rules.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_a_runbook_and_a_promtool_test() -> None:
    import yaml

    from tests.conftest import REPO

    unit_tests = yaml.safe_load((REPO / "monitoring" / "rules-test.yaml").read_text())["tests"]
    tested = {case["alertname"] for test in unit_tests for case in test["alert_rule_test"]
              if case.get("exp_alerts")}
    for rule in _alerts():
        name = str(rule["alert"])
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert str(annotations["runbook_url"]).endswith(f"/docs/runbooks/{name}.md"), name
        assert (REPO / "docs" / "runbooks" / f"{name}.md").is_file(), name
        assert name in tested, f"{name} has no promtool test where it fires"
