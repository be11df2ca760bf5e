"""The outermost layer of the gateway: request metrics, the body size limit, last-resort errors.

Written as plain ASGI (no per-request objects) because it runs on every request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churnwire.gateway.metrics import UNMATCHED_ROUTE, GatewayMetrics

log = logging.getLogger(__name__)

# Any other method is counted as "other", so clients cannot grow the label set.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class BodyTooLarge(Exception):
    """The request body exceeds the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class GatewayLayer:
    """Counts and times every request by route template, and bounds request bodies."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics, max_body_bytes: int) -> None:
        self._app = app
        self._metrics = metrics
        self._max_body = max_body_bytes

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        received = 0
        checked = False

        async def limited_receive() -> Message:
            nonlocal received, checked
            if not checked:
                checked = True
                declared = _declared_length(scope)
                if declared is not None and declared > self._max_body:
                    raise BodyTooLarge(self._max_body)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_body:
                    raise BodyTooLarge(self._max_body)
            return message

        return limited_receive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, self._limited(scope, receive), observed_send)
        except Exception:
            # The app has already answered 503 (its Exception handler); record it once here.
            self._metrics.unexpected_errors.inc()
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            status = status or 503
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", UNMATCHED_ROUTE)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self._metrics.requests.labels(template, method, str(status)).inc()
            self._metrics.request_seconds.labels(template).observe(time.perf_counter() - started)
