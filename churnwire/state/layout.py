"""The Redis key layout and the encoding of what is stored under each key.

All keys of one customer share the hash tag ``{customer_id}``, so they live in one slot and a
Lua script may touch them together. See docs/state.md for sizes and retention.
"""

from __future__ import annotations

from churnwire.state.features import CustomerProfile, OrderFact, WebFact

CUSTOMERS_INDEX = "cw:customers"
WATERMARK = "cw:watermark"
# Sorted set: customer id by the event time (epoch microseconds) of their next inactivity check.
SWEEP_DUE = "cw:sweep"
# Hash: "segment|risk_band" -> customers whose latest score falls there (kept by the scorer).
RISK_BANDS = "cw:risk:bands"
# Sorted set: recent alert messages (their JSON) by publication time in epoch milliseconds.
RECENT_ALERTS = "cw:alerts"
RECENT_ALERTS_KEPT = 10_000
# Hash: API key hash (sha256 hex) -> JSON {"name", "scope", "created_at"}.
API_KEYS = "cw:apikeys"
POSITION_FIELD = "_pos"
DELETED = "D"


def orders_key(customer_id: str) -> str:
    """Hash: order id -> ``position|created_at|amount|items|status`` or ``position|D``."""
    return f"cw:{{{customer_id}}}:orders"


def profile_key(customer_id: str) -> str:
    """Hash: the customer's attributes plus the position of the change that wrote them."""
    return f"cw:{{{customer_id}}}:profile"


def tombstone_key(customer_id: str) -> str:
    """String: position of the customer's deletion, so stale redeliveries cannot revive it."""
    return f"cw:{{{customer_id}}}:deleted"


def score_key(customer_id: str) -> str:
    """Hash: the latest churn score, written by the worker, read by the gateway.

    Fields: ``probability`` (the variant that drives alerts), ``model_version``, ``variant``
    (``champion`` or ``challenger``), ``risk_band`` (``low``, ``medium``, ``high``),
    ``scored_at`` (the as-of time of the features, epoch microseconds),
    ``champion_probability``, ``champion_version``, ``challenger_probability``,
    ``challenger_version``, and ``top_features`` (JSON list of ``{"feature", "value",
    "contribution"}``, written when an alert is raised).
    """
    return f"cw:{{{customer_id}}}:score"


def alert_state_key(customer_id: str) -> str:
    """Hash: ``state`` (``above`` or ``below``), ``crossings`` (count), ``position`` of the
    change that last moved it; makes each threshold crossing produce exactly one alert."""
    return f"cw:{{{customer_id}}}:alert"


def web_key(customer_id: str) -> str:
    """Hash: web event id -> ``occurred_at|type``."""
    return f"cw:{{{customer_id}}}:web"


def encode_order(fact: OrderFact) -> str:
    """The stored form of a live order (without its position prefix)."""
    return f"{fact.created_at}|{fact.amount!r}|{fact.items}|{fact.status}"


def decode_orders(stored: dict[str, str]) -> list[OrderFact]:
    """Live orders of a customer's orders hash (deleted ones are skipped)."""
    facts = []
    for order_id, value in stored.items():
        parts = value.split("|", 4)
        if len(parts) < 5:
            continue  # position|D: a deleted order
        _, created_at, amount, items, status = parts
        facts.append(OrderFact(order_id, int(created_at), float(amount), int(items), status))
    return facts


def encode_profile(profile: CustomerProfile) -> dict[str, str]:
    """The stored fields of a profile; null attributes are left out."""
    fields = {
        "signup_at": str(profile.signup_at),
        "marketing_opt_in": "1" if profile.marketing_opt_in else "0",
    }
    for name in ("segment", "country", "acquisition_channel"):
        value = getattr(profile, name)
        if value is not None:
            fields[name] = value
    return fields


def decode_profile(customer_id: str, stored: dict[str, str]) -> CustomerProfile | None:
    """The profile of a profile hash, None when the customer is unknown."""
    if "signup_at" not in stored:
        return None
    return CustomerProfile(
        customer_id=customer_id,
        signup_at=int(stored["signup_at"]),
        segment=stored.get("segment"),
        country=stored.get("country"),
        acquisition_channel=stored.get("acquisition_channel"),
        marketing_opt_in=stored.get("marketing_opt_in") == "1",
    )


def decode_web(stored: dict[str, str]) -> list[WebFact]:
    """Web facts of a customer's web hash (entries that do not parse are skipped)."""
    facts = []
    for event_id, value in stored.items():
        occurred_at, _, event_type = value.partition("|")
        try:
            facts.append(WebFact(event_id, int(occurred_at), event_type))
        except ValueError:
            continue
    return facts
