"""Validation of ids, query parameters and bodies: a refusal names what is wrong.

400 means the body is not JSON (or not an object); 422 means it is JSON but breaks a rule.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from churnwire.gateway.errors import ApiError
from churnwire.streams.web_events import WEB_EVENT_TYPES
from churnwire.timeutil import to_micros

CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
# RFC 3339 date-time; Python parses a superset of it, so the shape is checked first.
DATE_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
SINCE_PATTERN = r"^[0-9]{1,15}$"
MAX_LOOKUP_IDS = 1000
MAX_EVENTS = 500
MAX_ALERTS = 1000
DEFAULT_ALERTS = 100

_CUSTOMER_ID = re.compile(CUSTOMER_ID_PATTERN)
_EVENT_ID = re.compile(EVENT_ID_PATTERN)
_DATE_TIME = re.compile(DATE_TIME_PATTERN)
_SINCE = re.compile(SINCE_PATTERN)
_LIMIT = re.compile(r"^[0-9]{1,4}$")


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, message)


def check_customer_id(value: Any, where: str = "customer_id") -> str:
    """The id if it is a valid customer id (letters, digits, ``._:@-``, at most 128)."""
    if not isinstance(value, str) or not _CUSTOMER_ID.match(value):
        raise _unprocessable(
            f"{where} must be 1-128 characters: letters, digits and . _ : @ - "
            "(starting with a letter or digit)"
        )
    return value


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; 400 when it is not one."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApiError(400, f"request body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ApiError(400, "request body must be a JSON object")
    return document


def _only_fields(document: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise _unprocessable(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")


def parse_lookup(document: dict[str, Any]) -> list[str]:
    """The distinct customer ids of a batch lookup body, in request order."""
    _only_fields(document, {"customer_ids"}, "body")
    ids = document.get("customer_ids")
    if not isinstance(ids, list) or not ids:
        raise _unprocessable("customer_ids must be a non-empty list of customer ids")
    if len(ids) > MAX_LOOKUP_IDS:
        raise _unprocessable(f"customer_ids holds {len(ids)} ids; at most {MAX_LOOKUP_IDS}")
    for index, customer_id in enumerate(ids):
        check_customer_id(customer_id, f"customer_ids[{index}]")
    return list(dict.fromkeys(ids))


@dataclass(frozen=True)
class AlertQuery:
    """``GET /v1/alerts`` parameters: alerts published after ``since`` (epoch ms), at most
    ``limit``; without ``since``, the newest ``limit``."""

    since: int | None
    limit: int


def parse_alert_query(params: Mapping[str, str]) -> AlertQuery:
    """Validate ``since`` (epoch milliseconds) and ``limit`` (1-1000, default 100)."""
    since_text = params.get("since")
    since = None
    if since_text is not None:
        if not _SINCE.match(since_text):
            raise _unprocessable("since must be epoch milliseconds: an integer of 1-15 digits")
        since = int(since_text)
    limit_text = params.get("limit")
    limit = DEFAULT_ALERTS
    if limit_text is not None:
        if not _LIMIT.match(limit_text) or not 1 <= int(limit_text) <= MAX_ALERTS:
            raise _unprocessable(f"limit must be an integer from 1 to {MAX_ALERTS}")
        limit = int(limit_text)
    return AlertQuery(since, limit)


MAX_INSIGHTS = 100
DEFAULT_INSIGHTS = 20
MAX_INSIGHT_OFFSET = 100_000
_OFFSET = re.compile(r"^[0-9]{1,6}$")


@dataclass(frozen=True)
class InsightQuery:
    """``GET /v1/customers/{customer_id}/insights`` paging: skip ``offset``, return ``limit``."""

    limit: int
    offset: int


def parse_insight_query(params: Mapping[str, str]) -> InsightQuery:
    """Validate ``limit`` (1-100, default 20) and ``offset`` (0-100000, default 0)."""
    limit_text, offset_text = params.get("limit"), params.get("offset")
    limit, offset = DEFAULT_INSIGHTS, 0
    if limit_text is not None:
        if not _LIMIT.match(limit_text) or not 1 <= int(limit_text) <= MAX_INSIGHTS:
            raise _unprocessable(f"limit must be an integer from 1 to {MAX_INSIGHTS}")
        limit = int(limit_text)
    if offset_text is not None:
        if not _OFFSET.match(offset_text) or int(offset_text) > MAX_INSIGHT_OFFSET:
            raise _unprocessable(f"offset must be an integer from 0 to {MAX_INSIGHT_OFFSET}")
        offset = int(offset_text)
    return InsightQuery(limit, offset)


def parse_timestamp(value: Any, where: str) -> int:
    """Epoch microseconds of an RFC 3339 date-time with a zone."""
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise _unprocessable(f"{where} must be an RFC 3339 date-time with a zone, "
                             "e.g. 2026-12-04T05:12:09Z")
    try:
        moment = datetime.fromisoformat(value.upper())
        return to_micros(moment)
    except (ValueError, OverflowError):
        raise _unprocessable(f"{where} is not a valid date-time: {value!r}") from None


def parse_events(document: dict[str, Any], now: datetime) -> list[dict[str, str]]:
    """The clickstream events of a ``POST /v1/events`` body, as ``web-events`` messages.

    ``event_id`` defaults to a new UUID and ``occurred_at`` to ``now``.
    """
    _only_fields(document, {"events"}, "body")
    events = document.get("events")
    if not isinstance(events, list) or not events:
        raise _unprocessable("events must be a non-empty list of events")
    if len(events) > MAX_EVENTS:
        raise _unprocessable(f"events holds {len(events)} events; at most {MAX_EVENTS}")
    messages = []
    for index, event in enumerate(events):
        where = f"events[{index}]"
        if not isinstance(event, dict):
            raise _unprocessable(f"{where} must be an object")
        _only_fields(event, {"customer_id", "type", "occurred_at", "event_id"}, where)
        check_customer_id(event.get("customer_id"), f"{where}.customer_id")
        if not isinstance(event.get("type"), str) or event["type"] not in WEB_EVENT_TYPES:
            raise _unprocessable(
                f"{where}.type must be one of {', '.join(sorted(WEB_EVENT_TYPES))}"
            )
        occurred_at = event.get("occurred_at", now.isoformat())
        parse_timestamp(occurred_at, f"{where}.occurred_at")
        event_id = event.get("event_id", str(uuid.uuid4()))
        if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
            raise _unprocessable(f"{where}.event_id must be 1-128 characters: letters, digits "
                                 "and . _ : @ - (starting with a letter or digit)")
        messages.append({"event_id": event_id, "customer_id": event["customer_id"],
                         "type": event["type"], "occurred_at": occurred_at.upper()})
    return messages
