"""``churnwire gateway``: the gateway on uvicorn (uvloop and httptools), TLS when configured."""

from __future__ import annotations

import logging

import uvicorn
from starlette.types import ASGIApp

from churnwire.config import Settings, load_settings

log = logging.getLogger(__name__)

# Open server-sent-event streams are closed after this long when the gateway stops.
GRACEFUL_SHUTDOWN_SECONDS = 3


def build() -> ASGIApp:
    """The application factory uvicorn calls in each worker process."""
    from churnwire.gateway.app import create_app

    return create_app(load_settings())


def run_gateway(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; return the exit code."""
    tls = settings.gateway_tls_cert is not None
    log.info("gateway on %s://%s:%d with %d worker(s)", "https" if tls else "http",
             settings.gateway_host, settings.gateway_port, settings.gateway_workers)
    uvicorn.run(
        "churnwire.gateway.server:build",
        factory=True,
        host=settings.gateway_host,
        port=settings.gateway_port,
        workers=settings.gateway_workers,
        loop="uvloop",
        http="httptools",
        ssl_certfile=str(settings.gateway_tls_cert) if tls else None,
        ssl_keyfile=str(settings.gateway_tls_key) if tls else None,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return 0
