"""The gateway as part of the stack: status, health, readiness, metrics, unknown routes."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
from prometheus_client.parser import text_string_to_metric_families

from churnwire.embedded.stack import Stack
from tests.gateway_helpers import error_of


def test_status_json_reports_the_gateway_healthy(stack: Stack) -> None:
    result = subprocess.run([sys.executable, "-m", "churnwire", "status", "--json"],
                            capture_output=True, text=True, timeout=60)
    gateway = json.loads(result.stdout)["gateway"]
    assert gateway["healthy"] is True, gateway
    assert gateway["url"] == f"http://127.0.0.1:{stack.settings.gateway_port}"
    assert isinstance(gateway["pid"], int)


def test_healthz_and_readyz_answer_without_a_key(anonymous: httpx.Client) -> None:
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "redis": "ok", "kafka": "ok"}


def test_unknown_routes_and_methods_are_json_errors(api: httpx.Client) -> None:
    missing = api.get("/v2/nothing")
    assert missing.status_code == 404 and error_of(missing)
    wrong_method = api.delete("/v1/customers/someone")
    assert wrong_method.status_code == 405 and error_of(wrong_method)
    assert "GET" in wrong_method.headers["allow"]


def _samples(anonymous: httpx.Client, name: str) -> list[tuple[dict[str, str], float]]:
    text = anonymous.get("/metrics").text
    return [(sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name]


def test_metrics_are_labelled_by_route_template_not_raw_path(
    api: httpx.Client, anonymous: httpx.Client, unique: str
) -> None:
    before = sum(value for labels, value in _samples(anonymous, "churnwire_gateway_requests_total")
                 if labels == {"route": "/v1/customers/{customer_id}", "method": "GET",
                               "status": "404"})
    for n in range(3):
        assert api.get(f"/v1/customers/{unique}-{n}").status_code == 404

    requests = _samples(anonymous, "churnwire_gateway_requests_total")
    after = sum(value for labels, value in requests
                if labels == {"route": "/v1/customers/{customer_id}", "method": "GET",
                              "status": "404"})
    assert after == before + 3
    assert not any(unique in labels["route"] for labels, _ in requests)
    buckets = _samples(anonymous, "churnwire_gateway_request_seconds_bucket")
    assert any(labels["route"] == "/v1/customers/{customer_id}" for labels, _ in buckets)
    assert _samples(anonymous, "churnwire_gateway_rate_limited_total")
