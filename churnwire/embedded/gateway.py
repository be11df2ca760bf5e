"""The gateway as a component of the embedded stack (``churnwire gateway`` detached)."""

from __future__ import annotations

import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

from churnwire.embedded.component import Component, ComponentStatus
from churnwire.embedded.process import read_pid, spawn, stop


class GatewayProcess(Component):
    """Runs the HTTP gateway; healthy while ``/healthz`` answers."""

    name = "gateway"

    @property
    def external(self) -> bool:
        return False

    @property
    def pid_file(self) -> Path:
        """Where the gateway's pid is recorded."""
        return self.settings.home / "run" / "gateway.pid"

    @property
    def url(self) -> str:
        """The gateway's base URL as clients on this machine reach it."""
        scheme = "https" if self.settings.gateway_tls_cert else "http"
        host = self.settings.gateway_host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"{scheme}://{host}:{self.settings.gateway_port}"

    def start(self) -> None:
        if read_pid(self.pid_file) is None:
            spawn(
                [sys.executable, "-m", "churnwire", "gateway"],
                pid_file=self.pid_file,
                log_file=self.log_file,
            )

    def stop(self) -> None:
        stop(self.pid_file, timeout=30.0)

    def status(self) -> ComponentStatus:
        pid = read_pid(self.pid_file)
        if pid is None:
            return ComponentStatus(url=self.url, healthy=False, pid=None, detail="not running")
        # The health probe checks that the process answers, not who signed its certificate.
        context = ssl._create_unverified_context() if self.settings.gateway_tls_cert else None
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=3,
                                        context=context) as response:
                healthy = response.status == 200
        except (urllib.error.URLError, OSError) as error:
            return ComponentStatus(url=self.url, healthy=False, pid=pid, detail=f"{error}")
        return ComponentStatus(url=self.url, healthy=healthy, pid=pid, detail="serving")
