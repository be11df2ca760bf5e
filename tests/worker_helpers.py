"""Helpers for tests that watch the stream worker."""

from __future__ import annotations

import urllib.request

from churnwire.config import Settings
from churnwire.streams.idle import wait_idle


def applied_events(metrics_port: int, topic: str, outcome: str = "applied") -> float:
    """A worker's counter of events of ``topic`` with ``outcome``, read from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    for line in text.splitlines():
        if (line.startswith("churnwire_stream_events_total{")
                and f'outcome="{outcome}"' in line and f'topic="{topic}"' in line):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def drain(settings: Settings, timeout: float = 180.0) -> None:
    """Wait until every committed change is in Redis; fail the test otherwise."""
    report = wait_idle(settings, timeout)
    assert report.idle, f"pipeline not idle after {report.seconds:.0f} s: {report.waiting_for}"
