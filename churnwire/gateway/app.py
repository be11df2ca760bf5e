"""The gateway's Starlette application: routes, authorization, and the lifespan of its clients.

Every ``/v1`` route needs ``Authorization: Bearer <key>``; ``POST /v1/events`` needs a key with
write scope. Refusals are JSON ``{"error": message}``; an unexpected error answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from churnwire.config import Settings
from churnwire.gateway.alerts import AlertBroadcaster, recent_alerts, sse_message
from churnwire.gateway.asgi import BodyTooLarge, GatewayLayer
from churnwire.gateway.errors import ApiError, error_response
from churnwire.gateway.events import EventPublisher
from churnwire.gateway.insights import public_insight
from churnwire.gateway.keys import ApiKey, KeyRing
from churnwire.gateway.lookup import CustomerReader, iso
from churnwire.gateway.metrics import GatewayMetrics
from churnwire.gateway.openapi import openapi_document
from churnwire.gateway.ratelimit import RateLimiter, retry_after_header
from churnwire.gateway.validation import (
    check_customer_id,
    parse_alert_query,
    parse_events,
    parse_insight_query,
    parse_json_object,
    parse_lookup,
)
from churnwire.insight_worker.store import InsightStore, mongo_client

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
# Includes starting the Kafka consumer when this is the only subscriber.
STREAM_READY_SECONDS = 10.0
_BEARER = {"WWW-Authenticate": 'Bearer realm="churnwire"'}


def _json(document: Any, status: int = 200) -> Response:
    body = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    return Response(body, status_code=status, media_type="application/json")


class Gateway:
    """The gateway's state (clients, key ring, limiter, metrics) and its endpoints."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()
        self.redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
        self.keys = KeyRing(self.redis)
        self.limiter = RateLimiter(settings.gateway_rate_limit)
        self.reader = CustomerReader(self.redis, settings.clock)
        self.publisher = EventPublisher(settings)
        self.broadcaster = AlertBroadcaster(settings)
        self._openapi = json.dumps(openapi_document(settings)).encode()
        self.mongo = mongo_client(settings.insight.mongo_url, timeout=2.0)
        self.insight_store = InsightStore(self.mongo, settings.insight.mongo_database)

    async def authorize(self, request: Request, scope: str) -> ApiKey:
        """The request's API key if it may use a route needing ``scope``; else 401/403/429."""
        header = request.headers.get("authorization")
        if not header:
            raise ApiError(401, "missing 'Authorization: Bearer <key>' header", _BEARER)
        kind, _, key = header.partition(" ")
        key = key.strip()
        if kind.lower() != "bearer" or not key:
            raise ApiError(401, "the Authorization header must be 'Bearer <key>'", _BEARER)
        found = await self.keys.find(key)
        if found is None:
            raise ApiError(401, "unknown or revoked API key", _BEARER)
        if not found.allows(scope):
            raise ApiError(403, f"this key has {found.scope} scope; this route needs {scope}")
        wait = self.limiter.acquire(found.key_hash)
        if wait:
            self.metrics.rate_limited.inc()
            raise ApiError(
                429,
                f"rate limit of {self.settings.gateway_rate_limit:g} requests/s for this key "
                "exceeded",
                {"Retry-After": retry_after_header(wait)},
            )
        return found

    async def customer(self, request: Request) -> Response:
        """``GET /v1/customers/{customer_id}``."""
        await self.authorize(request, "read")
        customer_id = check_customer_id(request.path_params["customer_id"])
        _, found = await self.reader.read([customer_id])
        if customer_id not in found:
            raise ApiError(404, f"unknown customer {customer_id!r}")
        return _json(found[customer_id])

    async def lookup(self, request: Request) -> Response:
        """``POST /v1/customers/lookup``: many customers in one Redis round trip."""
        await self.authorize(request, "read")
        customer_ids = parse_lookup(parse_json_object(await request.body()))
        as_of, found = await self.reader.read(customer_ids)
        return _json({
            "as_of": iso(as_of),
            "customers": [found[c] for c in customer_ids if c in found],
            "not_found": [c for c in customer_ids if c not in found],
        })

    async def insights(self, request: Request) -> Response:
        """``GET /v1/customers/{customer_id}/insights``: the customer's insights, newest first."""
        await self.authorize(request, "read")
        customer_id = check_customer_id(request.path_params["customer_id"])
        query = parse_insight_query(request.query_params)
        page = await self.insight_store.for_customer(customer_id, query.limit + 1, query.offset)
        more = len(page) > query.limit
        return _json({
            "customer_id": customer_id,
            "insights": [public_insight(d) for d in page[:query.limit]],
            "next_offset": query.offset + query.limit if more else None,
        })

    async def alerts(self, request: Request) -> Response:
        """``GET /v1/alerts?since=&limit=``: recent alerts from ``cw:alerts``."""
        await self.authorize(request, "read")
        query = parse_alert_query(request.query_params)
        return _json(await recent_alerts(self.redis, query))

    async def alert_stream(self, request: Request) -> Response:
        """``GET /v1/alerts/stream``: new alerts as server-sent events."""
        await self.authorize(request, "read")
        queue = self.broadcaster.subscribe()  # starts the consumer if nobody else reads
        try:
            await asyncio.wait_for(self.broadcaster.ready.wait(), STREAM_READY_SECONDS)
        except TimeoutError:
            self.broadcaster.unsubscribe(queue)
            raise ApiError(503, "the alert stream (Kafka) is not reachable; retry later") from None

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b": connected\n\n"
                while True:
                    try:
                        alert = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    self.metrics.alerts_streamed.inc()
                    yield sse_message(alert)
            finally:
                self.broadcaster.unsubscribe(queue)

        return StreamingResponse(
            events(), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def events(self, request: Request) -> Response:
        """``POST /v1/events``: clickstream events into ``web-events``."""
        await self.authorize(request, "write")
        events = parse_events(parse_json_object(await request.body()), datetime.now(UTC))
        await self.publisher.publish(events)
        return _json({"accepted": len(events), "event_ids": [e["event_id"] for e in events]}, 202)

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz``: the process answers."""
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """``GET /readyz``: Redis and Kafka are reachable."""
        try:
            await asyncio.wait_for(self.redis.ping(), 2.0)
            redis_problem = None
        except (TimeoutError, RedisError, OSError) as error:
            redis_problem = f"{type(error).__name__}: {error}"
        kafka_problem = await self.publisher.check()
        ready = redis_problem is None and kafka_problem is None
        return _json(
            {"status": "ready" if ready else "not ready",
             "redis": redis_problem or "ok", "kafka": kafka_problem or "ok"},
            200 if ready else 503,
        )

    async def prometheus(self, request: Request) -> Response:
        """``GET /metrics``: Prometheus text format."""
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``: the OpenAPI 3.1 description of this API."""
        return Response(self._openapi, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Load the key ring, start the background tasks; stop them at shutdown."""
        try:
            await self.keys.load()
        except (RedisError, OSError) as error:
            log.warning("API keys not loaded at start (%s); retrying on first use", error)
        tasks = [
            asyncio.create_task(self.keys.refresh_forever(), name="keyring"),
            asyncio.create_task(self.publisher.connect_forever(), name="producer"),
            asyncio.create_task(self.broadcaster.run(), name="alerts"),
        ]
        log.info("gateway ready on %s:%d", self.settings.gateway_host, self.settings.gateway_port)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.publisher.close()
            await self.redis.aclose()
            self.mongo.close()

    def routes(self) -> list[Route]:
        """Every route; the batch lookup comes before the single-customer template."""
        return [
            Route("/v1/customers/lookup", self.lookup, methods=["POST"]),
            Route("/v1/customers/{customer_id}", self.customer, methods=["GET"]),
            Route("/v1/customers/{customer_id}/insights", self.insights, methods=["GET"]),
            Route("/v1/alerts", self.alerts, methods=["GET"]),
            Route("/v1/alerts/stream", self.alert_stream, methods=["GET"]),
            Route("/v1/events", self.events, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return error_response(error.status, error.message, error.headers)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return error_response(error.status_code, str(error.detail), dict(error.headers or {}))


async def _too_large(request: Request, error: Exception) -> Response:
    assert isinstance(error, BodyTooLarge)
    return error_response(413, f"request body larger than the limit of {error.limit} bytes")


async def _store_down(request: Request, error: Exception) -> Response:
    log.warning("feature store unreachable on %s: %s", request.url.path, error)
    return error_response(503, "the feature store (Redis) is not reachable; retry later")


async def _insight_store_down(request: Request, error: Exception) -> Response:
    log.warning("insight store unreachable on %s: %s", request.url.path, type(error).__name__)
    return error_response(503, "the insight store (MongoDB) is not reachable; retry later")


async def _unexpected(request: Request, error: Exception) -> Response:
    # Logged (with its trace) by GatewayLayer, which sees the exception re-raised.
    return error_response(503, "the gateway could not answer this request; retry later")


def create_app(settings: Settings) -> ASGIApp:
    """The gateway as an ASGI application."""
    gateway = Gateway(settings)
    app = Starlette(
        routes=gateway.routes(),
        lifespan=gateway.lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            BodyTooLarge: _too_large,
            RedisError: _store_down,
            PyMongoError: _insight_store_down,
            Exception: _unexpected,
        },
    )
    app.state.gateway = gateway
    return GatewayLayer(app, gateway.metrics, settings.gateway_max_body_bytes)
