"""The stream worker as a component of the embedded stack (``churnwire worker`` detached)."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from churnwire.embedded.component import Component, ComponentStatus
from churnwire.embedded.process import read_pid, spawn, stop
from churnwire.streams.app import liveness_path

# The worker touches its liveness file every two seconds.
STALE_AFTER_SECONDS = 30.0


class StreamWorker(Component):
    """Runs the Faust feature worker; healthy while it reports liveness and serves /metrics."""

    name = "worker"

    @property
    def external(self) -> bool:
        return False

    @property
    def pid_file(self) -> Path:
        """Where the worker's pid is recorded."""
        return self.settings.home / "run" / "worker.pid"

    def start(self) -> None:
        if read_pid(self.pid_file) is None:
            spawn(
                [sys.executable, "-m", "churnwire", "worker"],
                pid_file=self.pid_file,
                log_file=self.log_file,
            )

    def stop(self) -> None:
        stop(self.pid_file, timeout=60.0)

    def status(self) -> ComponentStatus:
        pid = read_pid(self.pid_file)
        url = f"http://127.0.0.1:{self.settings.worker_metrics_port}/metrics"
        if pid is None:
            return ComponentStatus(url=url, healthy=False, pid=None, detail="not running")
        try:
            age = time.time() - liveness_path(self.settings, "worker").stat().st_mtime
        except FileNotFoundError:
            return ComponentStatus(url=url, healthy=False, pid=pid, detail="starting")
        if age > STALE_AFTER_SECONDS:
            return ComponentStatus(url=url, healthy=False, pid=pid, detail=f"stalled {age:.0f} s")
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                healthy = response.status == 200
        except (urllib.error.URLError, OSError) as error:
            return ComponentStatus(url=url, healthy=False, pid=pid, detail=f"metrics: {error}")
        return ComponentStatus(url=url, healthy=healthy, pid=pid, detail="consuming")
