"""Clickstream events on the ``web-events`` topic: validation and the stored form.

An event is a JSON object ``{"event_id", "customer_id", "type", "occurred_at"}`` with ``type``
one of :data:`WEB_EVENT_TYPES` and ``occurred_at`` an ISO-8601 timestamp with a zone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from churnwire.streams.changes import MalformedEvent
from churnwire.timeutil import parse_iso_micros

WEB_EVENT_TYPES = frozenset({"page_view", "add_to_cart", "session_start"})


@dataclass(frozen=True)
class WebEvent:
    """One clickstream event of a known customer."""

    event_id: str
    customer_id: str
    type: str
    occurred_at: int  # epoch microseconds


def decode_web_event(value: bytes) -> WebEvent:
    """Validate one ``web-events`` message; raises MalformedEvent with the reason."""
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedEvent(f"undecodable JSON: {error}") from None
    if not isinstance(document, dict):
        raise MalformedEvent("web event must be a JSON object")
    for field in ("event_id", "customer_id", "type", "occurred_at"):
        if not isinstance(document.get(field), str) or not document[field]:
            raise MalformedEvent(f"field '{field}' must be a non-empty string")
    if document["type"] not in WEB_EVENT_TYPES:
        raise MalformedEvent(f"unknown web event type {document['type']!r}")
    try:
        occurred_at = parse_iso_micros(document["occurred_at"])
    except ValueError:
        text = document["occurred_at"]
        raise MalformedEvent(f"occurred_at is not a timestamp: {text!r}") from None
    return WebEvent(document["event_id"], document["customer_id"], document["type"], occurred_at)
