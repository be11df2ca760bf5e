"""Model quality on the real CDNOW log: held-out customers, 90-day churn, honest baselines.

Starts a private PostgreSQL only (home ``.churnwire-quality/``, its own ports), loads the whole
CDNOW log into it, and trains with ``churnwire.models.training.train_model`` for every
scenario below at each evaluated cutoff (20% of customers held out, seed 7):

* ``single_cutoff``: training customers at the evaluated cutoff only (the protocol of the
  reference figures in STACK.md: plain XGBoost AUC 0.783 / BG/NBD 0.767 at 1997-09-30);
* ``multi_cutoff``: the same, plus the training customers at monthly earlier cutoffs;
* ``strict_time``: training rows only from cutoffs whose 90-day label window ends by the
  evaluated cutoff, so no training label uses anything after it (what a model trained on the
  evaluated day itself could have known).

Usage: ``.venv/bin/python benchmarks/quality.py [--keep-postgres]``. Results go to
``benchmarks/results/quality.json``; a table is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from _stack import REPO, RESULTS, bench_environment, isolate_environment, machine_info

from churnwire.config import Settings, load_settings
from churnwire.data.cdnow import load_cdnow
from churnwire.data.schema import apply_schema
from churnwire.embedded.postgres import EmbeddedPostgres
from churnwire.models.training import train_model

log = logging.getLogger("benchmarks.quality")

HOME = REPO / ".churnwire-quality"
BENCH_ENVIRONMENT = bench_environment(".churnwire-quality", 40)
HORIZON_DAYS = 90
HOLDOUT = 0.2
SEED = 7
REFERENCES = {
    "1997-09-30": {
        "plain_xgboost_auc": 0.783, "bg_nbd_auc": 0.767, "plain_xgboost_accuracy": 0.841
    },
    "1997-12-31": {"plain_xgboost_auc": 0.798, "plain_xgboost_accuracy": 0.855},
}
EVALUATED = (date(1997, 9, 30), date(1997, 12, 31))
MONTHS_BACK = 6


def earlier_cutoffs(evaluated: date, months: int, step_days: int = 30) -> list[date]:
    """Cutoffs every ``step_days`` before ``evaluated``, no earlier than CDNOW's third month."""
    first_useful = date(1997, 3, 31)
    cutoffs = [evaluated - timedelta(days=step_days * k) for k in range(1, months + 1)]
    return sorted(c for c in cutoffs if c >= first_useful)


def scenarios(evaluated: date) -> dict[str, dict[str, Any]]:
    """The training cutoffs and time protocol of each scenario at ``evaluated``."""
    horizon = timedelta(days=HORIZON_DAYS)
    strict = [c for c in earlier_cutoffs(evaluated, 12) if c + horizon <= evaluated]
    return {
        "single_cutoff": {"cutoffs": [evaluated], "strict_time": False},
        "multi_cutoff": {
            "cutoffs": [*earlier_cutoffs(evaluated, MONTHS_BACK), evaluated],
            "strict_time": False,
        },
        "strict_time": {"cutoffs": [*strict, evaluated], "strict_time": True},
    }


@contextmanager
def private_postgres(keep: bool) -> Iterator[Settings]:
    """A private PostgreSQL (nothing else) with the schema; stopped at the end unless kept."""
    settings = load_settings()
    lock_path = Path(tempfile.gettempdir()) / "churnwire-bench-quality.lock"
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another quality benchmark is running on {HOME}") from None
        postgres = EmbeddedPostgres(settings)
        postgres.start()
        try:
            asyncio.run(apply_schema(settings.postgres_url))
            yield settings
        finally:
            if not keep:
                postgres.stop()
                log.info("PostgreSQL stopped")


def run_scenario(settings: Settings, evaluated: date, spec: dict[str, Any]) -> dict[str, Any]:
    """Train one scenario and keep what the table and the JSON need."""
    started = time.monotonic()
    result = train_model(
        settings, spec["cutoffs"], HORIZON_DAYS, HOLDOUT, SEED, strict_time=spec["strict_time"]
    )
    card = result.card
    metrics = card["metrics"]
    return {
        "version": result.version,
        "training_cutoffs": card["data"]["training_cutoffs"],
        "protocol": card["data"]["protocol"],
        "train_rows": card["data"]["train_rows"],
        "test_rows": card["data"]["test_rows"],
        "test_customers": card["data"]["test_customers"],
        "params": card["model"]["params"],
        "tuning": card["model"]["tuning"],
        "parity_max_abs_diff": card["parity"]["max_abs_diff"],
        "model": {k: v for k, v in metrics["model"].items() if k != "calibration"},
        "calibration": metrics["model"]["calibration"],
        "baselines": {
            name: {k: v for k, v in values.items() if k != "calibration"}
            for name, values in metrics["baselines"].items()
        },
        "seconds": round(time.monotonic() - started, 1),
    }


def print_table(results: dict[str, Any]) -> None:
    """One line per cutoff and scenario, with the baselines and references beside it."""
    header = (f"{'cutoff':<11} {'scenario':<14} {'AUC':>6} {'PR-AUC':>6} {'acc@.5':>6} "
              f"{'acc@thr':>7} {'prec@thr':>8} {'rec@thr':>7} {'Brier':>6} | "
              f"{'recency AUC':>11} {'majority acc':>12} | reference")
    print(header)
    print("-" * len(header))
    for cutoff, by_scenario in results["cutoffs"].items():
        reference = ", ".join(f"{k} {v}" for k, v in REFERENCES.get(cutoff, {}).items())
        for name, scenario in by_scenario.items():
            model, base = scenario["model"], scenario["baselines"]
            print(
                f"{cutoff:<11} {name:<14} {model['auc']:>6.3f} {model['pr_auc']:>6.3f} "
                f"{model['accuracy_at_0_5']:>6.3f} {model['accuracy_at_threshold']:>7.3f} "
                f"{model['precision_at_threshold']:>8.3f} {model['recall_at_threshold']:>7.3f} "
                f"{model['brier']:>6.3f} | {base['recency_rule']['auc']:>11.3f} "
                f"{base['majority_class']['accuracy_at_0_5']:>12.3f} | {reference}"
            )


def main() -> int:
    """Load CDNOW into a private PostgreSQL, train every scenario, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-postgres", action="store_true",
                        help="leave PostgreSQL running (a re-run then skips most of the load)")
    parser.add_argument("--fresh", action="store_true", help="delete the benchmark home first")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    isolate_environment(BENCH_ENVIRONMENT)
    if args.fresh:
        EmbeddedPostgres(load_settings()).stop()
        shutil.rmtree(HOME, ignore_errors=True)

    results: dict[str, Any] = {
        "benchmark": "quality",
        "dataset": "CDNOW_master.txt (lifetimes 0.11.3)",
        "horizon_days": HORIZON_DAYS,
        "holdout": HOLDOUT,
        "seed": SEED,
        "references": REFERENCES,
        "cutoffs": {},
    }
    with private_postgres(args.keep_postgres) as settings:
        started = time.monotonic()
        report = load_cdnow(settings.postgres_url, progress=False)
        results["load"] = {
            "summary": report.summary(), "seconds": round(time.monotonic() - started, 1)
        }
        shutil.rmtree(settings.model_dir, ignore_errors=True)
        for evaluated in EVALUATED:
            key = evaluated.isoformat()
            results["cutoffs"][key] = {}
            for name, spec in scenarios(evaluated).items():
                log.info("training %s at %s on cutoffs %s", name, key, spec["cutoffs"])
                results["cutoffs"][key][name] = run_scenario(settings, evaluated, spec)
    results["machine"] = machine_info(("xgboost-cpu", "onnxruntime", "onnxmltools", "scikit-learn"))

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quality.json").write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwritten to {RESULTS / 'quality.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
