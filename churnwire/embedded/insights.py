"""The insight worker as a component of the embedded stack (``churnwire insights`` detached)."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from churnwire.embedded.component import Component, ComponentStatus
from churnwire.embedded.process import read_pid, spawn, stop

# The worker touches its liveness file every few seconds, even while a model call runs.
STALE_AFTER_SECONDS = 60.0


def liveness_file(home: Path, group: str) -> Path:
    """The file the insight worker of consumer group ``group`` touches while it consumes."""
    return home / "run" / f"insights-{group}.alive"


class InsightWorker(Component):
    """Runs the insight worker; healthy while it reports liveness and serves /metrics."""

    name = "insights"

    @property
    def external(self) -> bool:
        return False

    @property
    def pid_file(self) -> Path:
        """Where the worker's pid is recorded."""
        return self.settings.home / "run" / "insights.pid"

    def start(self) -> None:
        if read_pid(self.pid_file) is None:
            liveness_file(self.settings.home, self.settings.insight.group).unlink(missing_ok=True)
            spawn(
                [sys.executable, "-m", "churnwire", "insights"],
                pid_file=self.pid_file,
                log_file=self.log_file,
            )

    def stop(self) -> None:
        stop(self.pid_file, timeout=30.0)

    def status(self) -> ComponentStatus:
        pid = read_pid(self.pid_file)
        url = f"http://127.0.0.1:{self.settings.insight.metrics_port}/metrics"
        if pid is None:
            return ComponentStatus(url=url, healthy=False, pid=None, detail="not running")
        try:
            alive = liveness_file(self.settings.home, self.settings.insight.group)
            age = time.time() - alive.stat().st_mtime
        except FileNotFoundError:
            return ComponentStatus(url=url, healthy=False, pid=pid, detail="starting")
        if age > STALE_AFTER_SECONDS:
            return ComponentStatus(url=url, healthy=False, pid=pid, detail=f"stalled {age:.0f} s")
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                healthy = response.status == 200
        except (urllib.error.URLError, OSError) as error:
            return ComponentStatus(url=url, healthy=False, pid=pid, detail=f"metrics: {error}")
        return ComponentStatus(url=url, healthy=healthy, pid=pid, detail="consuming churn-alerts")
