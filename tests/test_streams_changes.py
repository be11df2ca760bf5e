"""Decoding Debezium envelopes: good events, and the reason given for every bad one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from churnwire.streams.changes import MalformedEvent, decode_customer, decode_order
from churnwire.streams.web_events import decode_web_event


def order_row(**overrides: Any) -> dict[str, Any]:
    row = {"order_id": "o1", "customer_id": "c1", "amount": "12.50", "items": 2,
           "category": "music", "status": "completed",
           "created_at": "1997-03-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
    row.update(overrides)
    return row


def envelope(op: str = "c", before: Any = None, after: Any = None, lsn: Any = 42) -> bytes:
    if after is None and op != "d":
        after = order_row()
    return json.dumps({"op": op, "before": before, "after": after,
                       "source": {"lsn": lsn, "table": "orders"}, "ts_ms": 1}).encode()


def test_an_insert_decodes_to_an_order_fact() -> None:
    change = decode_order(envelope())
    assert change.order_id == "o1" and change.op == "c"
    assert change.position == "00000000000000000042"
    assert change.after is not None and change.after.customer_id == "c1"
    assert change.after.fact.amount == 12.5 and change.after.fact.items == 2
    assert change.event_time == change.after.fact.created_at
    assert change.unknown_columns == frozenset()


def test_positions_sort_as_strings_in_lsn_order() -> None:
    small = decode_order(envelope(lsn=9)).position
    large = decode_order(envelope(lsn=10_000_000_000)).position
    assert small < large


def test_a_delete_uses_the_before_image() -> None:
    change = decode_order(envelope("d", before=order_row(), after=None))
    assert change.after is None and change.before is not None
    assert change.order_id == "o1"


def test_new_columns_are_tolerated_and_reported() -> None:
    change = decode_order(envelope(after=order_row(coupon="XMAS")))
    assert change.unknown_columns == frozenset({"coupon"})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x00\xffnot json", "undecodable JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (envelope(op="t"), "unknown operation 't'"),
        (envelope(after=order_row(amount=None)), "missing field 'amount' in after"),
        (envelope(after=order_row(amount=12.5)), "must be a decimal string"),
        (envelope(after=order_row(amount="-3")), "must be finite and >= 0"),
        (envelope(after=order_row(created_at="yesterday")), "is not a timestamp"),
        (envelope(after=order_row(items="two")), "'items' in after must be an integer"),
        (envelope(lsn="42"), "source.lsn must be a non-negative integer"),
        (envelope("d", before=None, after=None), "REPLICA IDENTITY FULL"),
    ],
)
def test_malformed_orders_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=None) as raised:
        decode_order(payload)
    assert reason in str(raised.value)


def test_a_customer_delete_needs_only_the_id() -> None:
    payload = json.dumps({"op": "d", "before": {"customer_id": "c9"}, "after": None,
                          "source": {"lsn": 7}}).encode()
    change = decode_customer(payload)
    assert change.customer_id == "c9" and change.after is None


def test_web_events_are_validated() -> None:
    good = {"event_id": "e1", "customer_id": "c1", "type": "page_view",
            "occurred_at": "2026-01-01T10:00:00+00:00"}
    assert decode_web_event(json.dumps(good).encode()).type == "page_view"
    with pytest.raises(MalformedEvent, match="unknown web event type"):
        decode_web_event(json.dumps({**good, "type": "purchase"}).encode())
    with pytest.raises(MalformedEvent, match="'customer_id'"):
        decode_web_event(json.dumps({**good, "customer_id": 5}).encode())
