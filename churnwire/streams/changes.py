"""Decodes Debezium change events into domain changes, or says precisely why it cannot.

Extra columns (schema drift that adds fields) are tolerated and reported; a missing or
ill-typed field the features need makes the event malformed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from churnwire.state.features import CustomerProfile, OrderFact
from churnwire.timeutil import parse_iso_micros

Operation = Literal["c", "r", "u", "d"]
OPERATIONS: frozenset[str] = frozenset({"c", "r", "u", "d"})

ORDER_COLUMNS = frozenset(
    {"order_id", "customer_id", "amount", "items", "category", "status", "created_at", "updated_at"}
)
CUSTOMER_COLUMNS = frozenset(
    {"customer_id", "email", "segment", "country", "acquisition_channel", "signup_at",
     "marketing_opt_in", "source", "updated_at"}
)


class MalformedEvent(ValueError):
    """The event cannot be applied; the message is the dead-letter reason."""


@dataclass(frozen=True)
class OrderRow:
    """One image (before or after) of an ``orders`` row."""

    customer_id: str
    fact: OrderFact


@dataclass(frozen=True)
class OrderChange:
    """A change to one order, at a source position that orders changes to the same row."""

    order_id: str
    position: str
    op: Operation
    before: OrderRow | None
    after: OrderRow | None
    event_time: int
    unknown_columns: frozenset[str]


@dataclass(frozen=True)
class CustomerChange:
    """A change to one customer."""

    customer_id: str
    position: str
    op: Operation
    after: CustomerProfile | None
    unknown_columns: frozenset[str]


def position_of(source: Any) -> str:
    """The source position of an event: its WAL LSN, zero-padded so strings compare in order."""
    if not isinstance(source, dict):
        raise MalformedEvent("missing 'source' block")
    lsn = source.get("lsn")
    if not isinstance(lsn, int) or isinstance(lsn, bool) or lsn < 0:
        raise MalformedEvent(f"source.lsn must be a non-negative integer, got {lsn!r}")
    return f"{lsn:020d}"


def _envelope(value: bytes) -> tuple[dict[str, Any], Operation]:
    try:
        envelope = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedEvent(f"undecodable JSON: {error}") from None
    if not isinstance(envelope, dict):
        raise MalformedEvent(f"envelope must be a JSON object, got {type(envelope).__name__}")
    op = envelope.get("op")
    if op not in OPERATIONS:
        raise MalformedEvent(f"unknown operation {op!r}")
    return envelope, op


def _image(envelope: dict[str, Any], name: str) -> dict[str, Any] | None:
    image = envelope.get(name)
    if image is not None and not isinstance(image, dict):
        raise MalformedEvent(f"'{name}' must be an object or null")
    return image


def _required(row: dict[str, Any], field: str, image: str) -> Any:
    if row.get(field) is None:
        raise MalformedEvent(f"missing field '{field}' in {image}")
    return row[field]


def _text(row: dict[str, Any], field: str, image: str) -> str:
    value = _required(row, field, image)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"field '{field}' in {image} must be a non-empty string")
    return value


def _timestamp(row: dict[str, Any], field: str, image: str) -> int:
    value = _required(row, field, image)
    if not isinstance(value, str):
        raise MalformedEvent(f"field '{field}' in {image} must be an ISO-8601 string")
    try:
        return parse_iso_micros(value)
    except ValueError:
        raise MalformedEvent(f"field '{field}' in {image} is not a timestamp: {value!r}") from None


def _amount(row: dict[str, Any], image: str) -> float:
    value = _required(row, "amount", image)
    if not isinstance(value, str):
        raise MalformedEvent(f"field 'amount' in {image} must be a decimal string, got {value!r}")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise MalformedEvent(f"field 'amount' in {image} is not a number: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise MalformedEvent(f"field 'amount' in {image} must be finite and >= 0: {value!r}")
    return float(amount)


def _order_row(row: dict[str, Any], image: str) -> OrderRow:
    items = row.get("items", 1)
    if not isinstance(items, int) or isinstance(items, bool):
        raise MalformedEvent(f"field 'items' in {image} must be an integer, got {items!r}")
    status = row.get("status") or "completed"
    if not isinstance(status, str):
        raise MalformedEvent(f"field 'status' in {image} must be a string")
    fact = OrderFact(
        order_id=_text(row, "order_id", image),
        created_at=_timestamp(row, "created_at", image),
        amount=_amount(row, image),
        items=items,
        status=status,
    )
    return OrderRow(customer_id=_text(row, "customer_id", image), fact=fact)


def decode_order(value: bytes) -> OrderChange:
    """An ``orders`` change event; raises MalformedEvent with the reason."""
    envelope, op = _envelope(value)
    before_row = _image(envelope, "before")
    after_row = _image(envelope, "after")
    if op == "d" and before_row is None:
        raise MalformedEvent("delete without a 'before' image (is REPLICA IDENTITY FULL set?)")
    if op != "d" and after_row is None:
        raise MalformedEvent(f"operation {op!r} without an 'after' image")
    before = _order_row(before_row, "before") if before_row is not None else None
    after = _order_row(after_row, "after") if after_row is not None else None
    current = after or before
    assert current is not None
    columns = set(after_row or {}) | set(before_row or {})
    return OrderChange(
        order_id=current.fact.order_id,
        position=position_of(envelope.get("source")),
        op=op,
        before=before,
        after=after,
        event_time=current.fact.created_at,
        unknown_columns=frozenset(columns - ORDER_COLUMNS),
    )


def _profile(row: dict[str, Any]) -> CustomerProfile:
    def optional_text(field: str) -> str | None:
        value = row.get(field)
        if value is not None and not isinstance(value, str):
            raise MalformedEvent(f"field '{field}' in after must be a string or null")
        return value

    opt_in = row.get("marketing_opt_in", False)
    if not isinstance(opt_in, bool):
        raise MalformedEvent("field 'marketing_opt_in' in after must be a boolean")
    return CustomerProfile(
        customer_id=_text(row, "customer_id", "after"),
        signup_at=_timestamp(row, "signup_at", "after"),
        segment=optional_text("segment"),
        country=optional_text("country"),
        acquisition_channel=optional_text("acquisition_channel"),
        marketing_opt_in=opt_in,
    )


def decode_customer(value: bytes) -> CustomerChange:
    """A ``customers`` change event; raises MalformedEvent with the reason."""
    envelope, op = _envelope(value)
    before_row = _image(envelope, "before")
    after_row = _image(envelope, "after")
    if op == "d":
        if before_row is None:
            raise MalformedEvent("delete without a 'before' image (is REPLICA IDENTITY FULL set?)")
        customer_id = _text(before_row, "customer_id", "before")
        after = None
    else:
        if after_row is None:
            raise MalformedEvent(f"operation {op!r} without an 'after' image")
        after = _profile(after_row)
        customer_id = after.customer_id
    columns = set(after_row or before_row or {})
    return CustomerChange(
        customer_id=customer_id,
        position=position_of(envelope.get("source")),
        op=op,
        after=after,
        unknown_columns=frozenset(columns - CUSTOMER_COLUMNS),
    )
