"""Where the cost estimate finds each measured throughput in ``benchmarks/results/*.json``.

One table, ``MEASUREMENTS``, names the file and the candidate key paths of every figure the
estimate uses, so a change in a benchmark's output format is fixed here and nowhere else.
A missing file or key is reported by name; nothing is ever guessed in its place.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@dataclass(frozen=True)
class Measurement:
    """A figure the estimate needs: its file and the key paths it may sit under."""

    file: str
    paths: tuple[tuple[str, ...], ...]
    meaning: str


MEASUREMENTS: dict[str, Measurement] = {
    "cdc_events_per_second": Measurement(
        "cdc.json", (("results", "throughput", "events_per_second"),),
        "change events per second one CDC process forwards to Kafka",
    ),
    "worker_events_per_second": Measurement(
        "scoring.json",
        (("worker", "results", "median_events_per_second", "on"),),
        "change events per second one stream worker applies and scores",
    ),
    "stream_events_per_second": Measurement(
        "stream.json",
        (("results", "median_worker_events_per_second"),
         ("results", "throughput", "events_per_second")),
        "change events per second one stream worker applies (features only)",
    ),
    "redis_bytes_per_customer": Measurement(
        "stream.json",
        (("results", "redis_memory", "used_memory_delta_bytes_per_customer"),
         ("results", "redis_memory", "memory_usage_bytes_per_customer_sampled")),
        "Redis memory per customer of feature state",
    ),
    "gateway_requests_per_second": Measurement(
        "gateway.json",
        (("results", "summary", "churnwire", "unthrottled_rps"),),
        "lookups per second one gateway process answers",
    ),
}


@dataclass(frozen=True)
class Found:
    """A measured value with where it came from, or why it is missing."""

    name: str
    value: float | None
    origin: str


def _dig(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(document, dict) or key not in document:
            return None
        document = document[key]
    return document


def read_measurement(name: str, results: Path = RESULTS) -> Found:
    """The measured value of ``name``, or None with a message naming what is missing."""
    measurement = MEASUREMENTS[name]
    path = results / measurement.file
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return Found(name, None, f"{path} is missing (run benchmarks/ to measure {name})")
    except ValueError as error:
        return Found(name, None, f"{path} is not JSON: {error}")
    for key_path in measurement.paths:
        value = _dig(document, key_path)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return Found(name, float(value), f"{measurement.file}: {'.'.join(key_path)}")
    tried = ", ".join(".".join(p) for p in measurement.paths)
    return Found(name, None, f"{path} has none of {tried} (edit churnwire/deploy/benchmarks.py)")
