"""API keys: created once, shown once, stored only as a SHA-256 hash in ``cw:apikeys``.

The gateway keeps the key table in memory (:class:`KeyRing`) and refreshes it in the
background, so checking a key costs no Redis round trip on the hot path.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import redis
import redis.asyncio as aioredis

from churnwire.gateway.ratelimit import RateLimiter
from churnwire.state.layout import API_KEYS

log = logging.getLogger(__name__)

SCOPES = ("read", "write")
KEY_PREFIX = "cw_"
REFRESH_SECONDS = 5.0
# Unknown keys are looked up in Redis (a key created since the last reload) at most this
# often per second in all, so guessing keys costs Redis little.
MISS_LOOKUPS_PER_SECOND = 50.0


@dataclass(frozen=True)
class ApiKey:
    """What the gateway knows about a key: its name and scope (never the key itself)."""

    key_hash: str
    name: str
    scope: str

    def allows(self, scope: str) -> bool:
        """Whether this key may use a route that needs ``scope`` (write implies read)."""
        return self.scope == "write" or scope == "read"


def hash_key(key: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(redis_url: str, name: str, scope: str) -> str:
    """Create a key with ``scope`` (``read`` or ``write``); return it (only its hash is stored)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if not name.strip():
        raise ValueError("a key needs a name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = {"name": name, "scope": scope,
              "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.hset(API_KEYS, hash_key(key), json.dumps(record))
    finally:
        client.close()
    log.info("created API key %r with scope %s", name, scope)
    return key


def list_api_keys(redis_url: str) -> list[dict[str, str]]:
    """Name, scope, creation time and hash prefix of every stored key."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = cast(dict[str, str], client.hgetall(API_KEYS))
    finally:
        client.close()
    listed = []
    for key_hash, record in sorted(stored.items()):
        try:
            fields = json.loads(record)
        except ValueError:
            fields = {}
        listed.append({"name": str(fields.get("name", "?")), "scope": str(fields.get("scope", "?")),
                       "created_at": str(fields.get("created_at", "?")), "hash": key_hash[:12]})
    return listed


def revoke_api_keys(redis_url: str, name: str) -> int:
    """Delete every key called ``name``; return how many (gateways notice within seconds)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = cast(dict[str, str], client.hgetall(API_KEYS))
        doomed = [key_hash for key_hash, record in stored.items()
                  if (parsed := _parse(key_hash, record)) is not None and parsed.name == name]
        if doomed:
            client.hdel(API_KEYS, *doomed)
    finally:
        client.close()
    log.info("revoked %d API key(s) named %r", len(doomed), name)
    return len(doomed)


def _parse(key_hash: str, stored: str) -> ApiKey | None:
    try:
        record = json.loads(stored)
        if record["scope"] in SCOPES:
            return ApiKey(key_hash, str(record["name"]), record["scope"])
    except (ValueError, KeyError, TypeError):
        pass
    log.warning("ignoring malformed API key record %s...", key_hash[:8])
    return None


class KeyRing:
    """The key table in memory: loaded at start, reloaded every few seconds, and asked of
    Redis for a key it does not know (one created since the last reload)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._keys: dict[str, ApiKey] = {}
        self._misses = RateLimiter(MISS_LOOKUPS_PER_SECOND)

    async def load(self) -> None:
        """Replace the table with what Redis holds now."""
        stored = cast(dict[str, str], await self._client.hgetall(API_KEYS))
        keys = {}
        for key_hash, record in stored.items():
            parsed = _parse(key_hash, record)
            if parsed is not None:
                keys[key_hash] = parsed
        self._keys = keys

    async def find(self, key: str) -> ApiKey | None:
        """The key's record, or None when it is unknown (or revoked)."""
        key_hash = hash_key(key)
        found = self._keys.get(key_hash)
        if found is None and not self._misses.acquire("miss"):
            stored = await self._client.hget(API_KEYS, key_hash)
            if stored is not None:
                found = _parse(key_hash, str(stored))
                if found is not None:
                    self._keys[key_hash] = found
        return found

    async def refresh_forever(self) -> None:
        """Reload the table every few seconds, so revocations take effect (run as a task)."""
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.load()
            except (aioredis.RedisError, OSError) as error:
                log.warning("could not reload API keys: %s", error)
