"""The OpenAPI 3.1 description of the gateway, built from the same constants the code checks.

Every status code listed is one the gateway really answers; ``tests/test_gateway_openapi.py``
runs schemathesis against the running gateway to keep it so.
"""

from __future__ import annotations

from typing import Any

from churnwire.config import Settings
from churnwire.gateway.validation import (
    CUSTOMER_ID_PATTERN,
    DEFAULT_ALERTS,
    DEFAULT_INSIGHTS,
    EVENT_ID_PATTERN,
    MAX_ALERTS,
    MAX_EVENTS,
    MAX_INSIGHT_OFFSET,
    MAX_INSIGHTS,
    MAX_LOOKUP_IDS,
)
from churnwire.state.features import FEATURES
from churnwire.streams.web_events import WEB_EVENT_TYPES

_KIND_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": ["integer", "null"]},
    "float": {"type": ["number", "null"]},
    "timestamp": {"type": ["string", "null"], "format": "date-time"},
    "string": {"type": ["string", "null"]},
    "bool": {"type": ["boolean", "null"]},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _json_content(_ref("Error"))}
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                                "required": True, "schema": {"type": "string"}}}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "the expected scheme (Bearer)",
                                          "required": True, "schema": {"type": "string"}}}


def _guarded(responses: dict[str, Any], write: bool = False) -> dict[str, Any]:
    """The responses of a ``/v1`` route: its own plus authentication, limits and outages."""
    common: dict[str, Any] = {
        "401": _error("missing, malformed or unknown API key", _WWW_AUTHENTICATE),
        "429": _error("this key exceeded its rate limit", _RETRY_AFTER),
        "503": _error("a backing service is unreachable, or an unexpected error (logged)"),
    }
    if write:
        common["403"] = _error("the key has read scope; this route needs write")
    return {**responses, **common}


def _features_schema() -> dict[str, Any]:
    properties = {}
    for spec in FEATURES:
        properties[spec.name] = {**_KIND_SCHEMAS[spec.kind], "description": spec.description}
    return {"type": "object", "properties": properties, "required": [s.name for s in FEATURES]}


def _schemas() -> dict[str, Any]:
    customer_id = {"type": "string", "pattern": CUSTOMER_ID_PATTERN}
    return {
        "Error": {"type": "object", "required": ["error"],
                  "properties": {"error": {"type": "string"}}},
        "CustomerId": customer_id,
        "Churn": {
            "type": ["object", "null"],
            "description": "the latest churn score; null until the customer has been scored",
            "required": ["probability", "model_version", "risk_band", "scored_at"],
            "properties": {
                "probability": {"type": "number", "minimum": 0, "maximum": 1},
                "model_version": {"type": "string"},
                "risk_band": {"type": "string", "description": "low, medium or high"},
                "scored_at": {"type": ["string", "null"], "format": "date-time",
                              "description": "as-of time of the features that were scored"},
            },
        },
        "Customer": {
            "type": "object",
            "required": ["customer_id", "as_of", "features", "churn"],
            "properties": {
                "customer_id": customer_id,
                "as_of": {"type": "string", "format": "date-time",
                          "description": "the time the features are evaluated at"},
                "features": _ref("Features"),
                "churn": _ref("Churn"),
            },
        },
        "Features": _features_schema(),
        "LookupRequest": {
            "type": "object", "required": ["customer_ids"], "additionalProperties": False,
            "properties": {"customer_ids": {"type": "array", "items": customer_id,
                                            "minItems": 1, "maxItems": MAX_LOOKUP_IDS}},
        },
        "LookupResponse": {
            "type": "object", "required": ["as_of", "customers", "not_found"],
            "properties": {
                "as_of": {"type": "string", "format": "date-time"},
                "customers": {"type": "array", "items": _ref("Customer")},
                "not_found": {"type": "array", "items": customer_id},
            },
        },
        "Alert": {
            "type": "object",
            "description": "a churn-alerts message, as documented in docs/alerts.md",
            "required": ["alert_id", "type", "customer_id"],
            "properties": {
                "alert_id": {"type": "string"},
                "type": {"type": "string", "enum": ["churn_risk", "recovered"]},
                "customer_id": {"type": "string"},
                "probability": {"type": "number"},
                "previous_probability": {"type": ["number", "null"]},
                "threshold": {"type": "number"},
                "risk_band": {"type": "string"},
                "model_version": {"type": "string"},
                "variant": {"type": "string"},
                "top_features": {"type": "array"},
                "event_time": {"type": "string"},
                "published_at": {"type": "string"},
            },
        },
        "AlertPage": {
            "type": "object", "required": ["alerts", "next_since"],
            "properties": {
                "alerts": {"type": "array", "items": _ref("Alert")},
                "next_since": {"type": ["integer", "null"],
                               "description": "pass as since to get the alerts after these"},
            },
        },
        "WebEvent": {
            "type": "object", "required": ["customer_id", "type"], "additionalProperties": False,
            "properties": {
                "customer_id": customer_id,
                "type": {"type": "string", "enum": sorted(WEB_EVENT_TYPES)},
                "occurred_at": {"type": "string", "format": "date-time",
                                "description": "RFC 3339 with a zone; default: now"},
                "event_id": {"type": "string", "pattern": EVENT_ID_PATTERN,
                             "description": "deduplication key; default: a new UUID"},
            },
        },
        "EventsRequest": {
            "type": "object", "required": ["events"], "additionalProperties": False,
            "properties": {"events": {"type": "array", "items": _ref("WebEvent"),
                                      "minItems": 1, "maxItems": MAX_EVENTS}},
        },
        "EventsAccepted": {
            "type": "object", "required": ["accepted", "event_ids"],
            "properties": {"accepted": {"type": "integer"},
                           "event_ids": {"type": "array", "items": {"type": "string"}}},
        },
        "Insight": _insight_schema(),
        "InsightPage": {
            "type": "object", "required": ["customer_id", "insights", "next_offset"],
            "properties": {
                "customer_id": {"type": "string"},
                "insights": {"type": "array", "items": _ref("Insight")},
                "next_offset": {"type": ["integer", "null"],
                                "description": "pass as offset for the next (older) page"},
            },
        },
        "Health": {"type": "object", "required": ["status"],
                   "properties": {"status": {"type": "string"}}},
        "Readiness": {
            "type": "object", "required": ["status", "redis", "kafka"],
            "properties": {"status": {"type": "string", "enum": ["ready", "not ready"]},
                           "redis": {"type": "string"}, "kafka": {"type": "string"}},
        },
    }


def _insight_schema() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "description": "a retention insight written for one churn_risk alert (docs/insights.md)",
        "required": ["alert_id", "customer_id", "summary", "risk_drivers", "actions",
                     "passage_ids", "generator", "prompt_version", "created_at"],
        "properties": {
            "alert_id": text, "customer_id": text, "summary": text,
            "risk_drivers": {"type": "array", "items": {
                "type": "object", "required": ["feature", "explanation"],
                "properties": {"feature": text, "explanation": text}}},
            "actions": {"type": "array", "items": {
                "type": "object", "required": ["action", "channel", "passage_id"],
                "properties": {"action": text, "channel": text, "passage_id": text}}},
            "passage_ids": {"type": "array", "items": text},
            "generator": {"type": "string", "enum": ["model", "rules"]},
            "fallback_reason": {"type": ["string", "null"]},
            "cached_from": {"type": ["string", "null"]},
            "prompt_version": text,
            "model": {"type": ["string", "null"]},
            "tokens": {"type": ["object", "null"]},
            "cost": {"type": ["number", "null"]},
            "latency_seconds": {"type": ["number", "null"]},
            "probability": {"type": ["number", "null"]},
            "risk_band": {"type": ["string", "null"]},
            "event_time": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
        },
    }


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": _json_content(_ref(schema))}


def _invalid_body() -> dict[str, Any]:
    return {"400": _error("the body is not a JSON object"),
            "413": _error("the body is larger than the configured limit"),
            "422": _error("the body breaks a rule (the message says which)")}


def _paths() -> dict[str, Any]:
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "/v1/customers/{customer_id}": {"get": {
            "summary": "features and churn score of one customer",
            "operationId": "getCustomer", "security": secured,
            "parameters": [{"name": "customer_id", "in": "path", "required": True,
                            "schema": _ref("CustomerId")}],
            "responses": _guarded({
                "200": {"description": "the customer",
                        "content": _json_content(_ref("Customer"))},
                "404": _error("no such customer"),
                "422": _error("the customer id is not valid"),
            }),
        }},
        "/v1/customers/{customer_id}/insights": {"get": {
            "summary": "retention insights of one customer, newest first",
            "operationId": "listCustomerInsights", "security": secured,
            "parameters": [
                {"name": "customer_id", "in": "path", "required": True,
                 "schema": _ref("CustomerId")},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INSIGHTS,
                            "default": DEFAULT_INSIGHTS}},
                {"name": "offset", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INSIGHT_OFFSET,
                            "default": 0}},
            ],
            "responses": _guarded({
                "200": {"description": "a page of insights (empty for a customer without any)",
                        "content": _json_content(_ref("InsightPage"))},
                "422": _error("the customer id, limit or offset is not valid"),
            }),
        }},
        "/v1/customers/lookup": {"post": {
            "summary": f"up to {MAX_LOOKUP_IDS} customers in one round trip",
            "operationId": "lookupCustomers", "security": secured,
            "requestBody": _body("LookupRequest"),
            "responses": _guarded({
                "200": {"description": "the customers found and the ids not found",
                        "content": _json_content(_ref("LookupResponse"))},
                **_invalid_body(),
            }),
        }},
        "/v1/alerts": {"get": {
            "summary": "recent alerts, oldest first",
            "operationId": "listAlerts", "security": secured,
            "parameters": [
                {"name": "since", "in": "query", "required": False,
                 "description": "epoch milliseconds: only alerts published after it "
                                "(default: the newest ones)",
                 "schema": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ALERTS,
                            "default": DEFAULT_ALERTS}},
            ],
            "responses": _guarded({
                "200": {"description": "a page of alerts",
                        "content": _json_content(_ref("AlertPage"))},
                "422": _error("since or limit is not valid"),
            }),
        }},
        "/v1/alerts/stream": {"get": {
            "summary": "new alerts as server-sent events (from the churn-alerts topic)",
            "operationId": "streamAlerts", "security": secured,
            "responses": _guarded({
                "200": {"description": "an endless event stream: one event per alert, "
                                       "'id' the alert id, 'event' its type, 'data' its JSON",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            }),
        }},
        "/v1/events": {"post": {
            "summary": "clickstream events into the web-events topic",
            "operationId": "postEvents", "security": secured,
            "requestBody": _body("EventsRequest"),
            "responses": _guarded({
                "202": {"description": "every event acknowledged by Kafka (acks=all)",
                        "content": _json_content(_ref("EventsAccepted"))},
                **_invalid_body(),
            }, write=True),
        }},
        "/healthz": {"get": {
            "summary": "liveness", "operationId": "health", "security": [],
            "responses": {"200": {"description": "the process answers",
                                  "content": _json_content(_ref("Health"))}},
        }},
        "/readyz": {"get": {
            "summary": "readiness: Redis and Kafka reachable", "operationId": "ready",
            "security": [],
            "responses": {
                "200": {"description": "ready", "content": _json_content(_ref("Readiness"))},
                "503": {"description": "not ready", "content": _json_content(_ref("Readiness"))},
            },
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics", "operationId": "metrics", "security": [],
            "responses": {"200": {"description": "text exposition format",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }},
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway as configured."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "churnwire gateway",
            "version": "1",
            "description": "Per-customer churn features and scores, churn alerts, and "
                           "clickstream intake. Errors are JSON {\"error\": message}. "
                           f"Bodies above {settings.gateway_max_body_bytes} bytes get 413; "
                           f"each key may make {settings.gateway_rate_limit:g} requests/s.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "churnwire keys create"}},
        },
    }
