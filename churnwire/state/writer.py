"""Applies decoded changes to Redis exactly once in effect, whatever Kafka redelivers.

Each change carries its source position (the WAL LSN, zero-padded). A Lua script applies it
only when it is newer than what is stored for that order or customer, in the same atomic step
as the update, so redelivered and reordered duplicates are no-ops and two workers writing the
same customer never lose an update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from churnwire.state.layout import (
    CUSTOMERS_INDEX,
    DELETED,
    WATERMARK,
    encode_order,
    encode_profile,
    orders_key,
    profile_key,
    tombstone_key,
    web_key,
)
from churnwire.streams.changes import CustomerChange, OrderChange
from churnwire.streams.web_events import WebEvent

# KEYS: orders hash, customer tombstone. ARGV: order id, position, payload or D, ttl seconds.
_APPLY_ORDER = """
local tomb = redis.call('GET', KEYS[2])
if tomb and tomb >= ARGV[2] then return 0 end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.sub(current, 1, 20) >= ARGV[2] then return 0 end
if ARGV[3] == 'D' and (not current) and tomb then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return 1
"""

# KEYS: profile, tombstone, orders. ARGV: position, ttl, tombstone ttl, U|D, field, value, ...
_APPLY_CUSTOMER = """
local tomb = redis.call('GET', KEYS[2])
if tomb and tomb >= ARGV[1] then return 0 end
local current = redis.call('HGET', KEYS[1], '_pos')
if current and current >= ARGV[1] then return 0 end
if ARGV[4] == 'D' then
  redis.call('DEL', KEYS[1], KEYS[3])
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
  return 1
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_pos', ARGV[1], unpack(ARGV, 5))
if tomb then redis.call('DEL', KEYS[2]) end
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

# KEYS: watermark. ARGV: event time in epoch microseconds.
_ADVANCE_WATERMARK = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
"""

TOMBSTONE_TTL_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class BatchOutcome:
    """How many changes of a batch changed state and how many were already applied."""

    applied: int
    duplicates: int
    customers: frozenset[str]


class StateWriter:
    """Writes changes to Redis in one pipelined round trip per batch."""

    def __init__(self, client: aioredis.Redis, state_ttl_seconds: int = 0) -> None:
        self._client = client
        self._ttl = state_ttl_seconds
        self._apply_order = client.register_script(_APPLY_ORDER)
        self._apply_customer = client.register_script(_APPLY_CUSTOMER)
        self._advance_watermark = client.register_script(_ADVANCE_WATERMARK)

    async def _queue_order(self, pipe: Any, change: OrderChange) -> tuple[set[str], int]:
        """Queue the scripts of one order change; return the customers touched and scripts queued.

        An order moved to another customer is deleted from the old one and written to the new.
        """
        targets: list[tuple[str, str]] = []
        before, after = change.before, change.after
        if before is not None and (after is None or before.customer_id != after.customer_id):
            targets.append((before.customer_id, DELETED))
        if after is not None:
            targets.append((after.customer_id, encode_order(after.fact)))
        for customer_id, payload in targets:
            await self._apply_order(
                keys=[orders_key(customer_id), tombstone_key(customer_id)],
                args=[change.order_id, change.position, payload, self._ttl],
                client=pipe,
            )
        return {customer_id for customer_id, _ in targets}, len(targets)

    async def _queue_customer(self, pipe: Any, change: CustomerChange) -> None:
        keys = [
            profile_key(change.customer_id),
            tombstone_key(change.customer_id),
            orders_key(change.customer_id),
        ]
        if change.after is None:
            args: list[Any] = [change.position, self._ttl, TOMBSTONE_TTL_SECONDS, "D"]
            await self._apply_customer(keys=keys, args=args, client=pipe)
            pipe.srem(CUSTOMERS_INDEX, change.customer_id)
            return
        fields = [item for pair in encode_profile(change.after).items() for item in pair]
        args = [change.position, self._ttl, TOMBSTONE_TTL_SECONDS, "U", *fields]
        await self._apply_customer(keys=keys, args=args, client=pipe)
        pipe.sadd(CUSTOMERS_INDEX, change.customer_id)

    async def apply(
        self,
        orders: Sequence[OrderChange] = (),
        customers: Sequence[CustomerChange] = (),
        web_events: Sequence[WebEvent] = (),
    ) -> BatchOutcome:
        """Apply a batch in order with one Redis round trip; count what changed state."""
        if not orders and not customers and not web_events:
            return BatchOutcome(0, 0, frozenset())
        touched: set[str] = set()
        # For each change, the positions of its results in the pipeline's reply.
        slots: list[range] = []
        queued = 0
        async with self._client.pipeline(transaction=False) as pipe:
            for customer in customers:
                await self._queue_customer(pipe, customer)  # the script, then SADD or SREM
                slots.append(range(queued, queued + 1))
                queued += 2
                touched.add(customer.customer_id)
            for order in orders:
                customers_touched, scripts = await self._queue_order(pipe, order)
                slots.append(range(queued, queued + scripts))
                queued += scripts
                touched.update(customers_touched)
            for event in web_events:
                # Event ids are unique: the first write wins and a redelivery changes nothing.
                pipe.hsetnx(
                    web_key(event.customer_id), event.event_id, f"{event.occurred_at}|{event.type}"
                )
                slots.append(range(queued, queued + 1))
                queued += 1
                touched.add(event.customer_id)
            if orders:
                watermark = max(order.event_time for order in orders)
                await self._advance_watermark(keys=[WATERMARK], args=[watermark], client=pipe)
            results = await pipe.execute()
        applied = sum(1 for slot in slots if any(int(results[i]) for i in slot))
        return BatchOutcome(applied, len(slots) - applied, frozenset(touched))
