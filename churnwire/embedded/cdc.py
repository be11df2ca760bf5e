"""The CDC process as a component of the embedded stack (``churnwire cdc`` in the background)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from churnwire.cdc.runner import status_path
from churnwire.embedded.component import Component, ComponentStatus
from churnwire.embedded.process import read_pid, spawn, stop

# Heartbeats arrive every few seconds; a status file older than this means a stuck process.
STALE_AFTER_SECONDS = 30.0


class CdcProcess(Component):
    """Runs ``churnwire cdc`` detached; healthy once it has forwarded its first batch."""

    name = "cdc"

    @property
    def external(self) -> bool:
        return False

    @property
    def pid_file(self) -> Path:
        """Where the CDC process's pid is recorded."""
        return self.settings.home / "run" / "cdc.pid"

    def start(self) -> None:
        if read_pid(self.pid_file) is not None:
            return
        status_path(self.settings).unlink(missing_ok=True)
        spawn(
            [sys.executable, "-m", "churnwire", "cdc"],
            pid_file=self.pid_file,
            log_file=self.log_file,
        )

    def stop(self) -> None:
        stop(self.pid_file, timeout=60.0)

    def _report(self) -> dict[str, Any]:
        try:
            report: dict[str, Any] = json.loads(status_path(self.settings).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return report

    def status(self) -> ComponentStatus:
        pid = read_pid(self.pid_file)
        report = self._report()
        fresh = time.time() - float(report.get("written_at", 0)) < STALE_AFTER_SECONDS
        state = report.get("state", "not running") if pid else "not running"
        healthy = pid is not None and fresh and state == "streaming"
        forwarded = report.get("forwarded", {})
        return ComponentStatus(
            url=f"slot {self.settings.cdc_slot} -> {self.settings.kafka_bootstrap}",
            healthy=healthy,
            pid=pid,
            detail=f"{state}; {sum(forwarded.values())} events forwarded" if pid else state,
        )
