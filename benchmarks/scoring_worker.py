"""Worker throughput with inline scoring on against scoring off, on the real CDNOW log.

Starts a private embedded stack under ``.churnwire-bench-scoring/``, loads all of CDNOW
(23,570 customers, 69,659 orders) through Debezium into Kafka with the stack's worker stopped,
trains a model, then times a fresh worker process (a consumer group of its own, Redis emptied)
folding every change event, alternately with ``CHURNWIRE_SCORING=off`` and ``on``. With
scoring on, the worker also scores every touched customer after each batch, runs the
inactivity sweep and learns outcomes: everything it does in production.

Usage: ``.venv/bin/python benchmarks/scoring_worker.py [--repeats N]``. The figures are
written to the ``worker`` section of ``benchmarks/results/scoring.json`` (other sections of
that file are kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from statistics import median
from typing import Any

from _stack import (
    RESULTS,
    bench_environment,
    isolate_environment,
    machine_info,
    private_stack,
)
from _worker import time_worker, wait_for_kafka

from churnwire.data.cdnow import load_cdnow
from churnwire.embedded.stack import Stack
from churnwire.models.training import train_model

log = logging.getLogger("benchmarks.scoring_worker")

# The insight worker and its model server are not part of this measurement.
BENCH_ENVIRONMENT = bench_environment(".churnwire-bench-scoring", 60, CHURNWIRE_INSIGHTS="off")
BENCH_WORKER_METRICS_PORT = 9518
TRAINING_CUTOFF = date(1997, 9, 30)


def _one_run(stack: Stack, scoring: str, run: int, events: int) -> dict[str, Any]:
    """Time a fresh worker (own group, empty state) folding ``events`` change events."""
    timing = time_worker(stack, f"{scoring}-{run}", events, BENCH_WORKER_METRICS_PORT,
                         {"CHURNWIRE_SCORING": scoring})
    return {"scoring": scoring, **timing}


def run(repeats: int) -> dict[str, Any]:
    """Load CDNOW, train, then alternate scoring off and on."""
    isolate_environment(BENCH_ENVIRONMENT)
    with private_stack() as stack:
        settings = stack.settings
        stack.worker.stop()
        report = load_cdnow(settings.postgres_url, progress=False)
        log.info("%s", report.summary())
        rows = {settings.customers_topic: 23_570, settings.orders_topic: 69_659}
        wait_for_kafka(stack, rows)
        trained = train_model(settings, [TRAINING_CUTOFF], horizon_days=90)
        events = sum(rows.values())
        runs = [
            _one_run(stack, scoring, repeat, events)
            for repeat in range(repeats)
            for scoring in ("off", "on")
        ]
    rates = {
        mode: median(r["events_per_second"] for r in runs if r["scoring"] == mode)
        for mode in ("off", "on")
    }
    return {
        "model_version": trained.version,
        "runs": runs,
        "median_events_per_second": rates,
        "on_to_off_ratio": round(rates["on"] / rates["off"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Run, merge into scoring.json, print a line per mode."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2, help="runs per mode")
    parser.add_argument("--output", type=Path, default=RESULTS / "scoring.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    machine = machine_info(("onnxruntime", "xgboost", "river", "faust-streaming"))
    section = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": None,
        "machine": machine,
        "parameters": {"repeats": args.repeats, "data": "CDNOW, all 69,659 orders"},
        "results": run(args.repeats),
    }
    section["duration_seconds"] = round(time.monotonic() - started, 1)
    document = json.loads(args.output.read_text()) if args.output.exists() else {}
    document["worker"] = section
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    results = section["results"]
    for mode, rate in results["median_events_per_second"].items():
        print(f"worker, scoring {mode:<3}: {rate:>9,.0f} events/s (median of {args.repeats})")
    print(f"scoring on / off: {results['on_to_off_ratio']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
