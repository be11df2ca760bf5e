"""Scoring benchmark: ONNX Runtime against native XGBoost, and the River challenger's cost.

Uses the quality benchmark's private PostgreSQL (``.churnwire-quality/``, loading CDNOW when
it is not there yet), trains the champion at 1997-09-30 (90-day horizon) exactly as
``churnwire train`` does, and on that model's real CDNOW feature rows measures in one run:

* one-row and 100-row scoring latency of the worker's ONNX Runtime session against the same
  model's XGBoost booster (``inplace_predict``), in alternating blocks so both see the same
  machine; the ratio is the figure to read on a shared, noisy machine;
* the cost of encoding feature rows into the model's matrix (the worker pays it too);
* River ``learn_one`` and ``predict_proba_one`` microseconds per sample of the challenger.

The worker's events per second with scoring on against off is measured by
``benchmarks/scoring_worker.py`` (the ``worker`` section of the same JSON file).

Usage: ``.venv/bin/python benchmarks/scoring.py [--calls N]``. Results go to the ``latency``
and ``river`` sections of ``benchmarks/results/scoring.json`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from _stack import RESULTS, isolate_environment, machine_info
from quality import BENCH_ENVIRONMENT, private_postgres

from churnwire.data.cdnow import load_cdnow
from churnwire.models.champion import ChampionModel
from churnwire.models.dataset import LabeledRow, labeled_rows
from churnwire.models.online import Challenger, online_features
from churnwire.models.registry import ModelRegistry
from churnwire.models.training import train_model

log = logging.getLogger("benchmarks.scoring")

CUTOFF = date(1997, 9, 30)
HORIZON_DAYS = 90
BLOCK = 100


def _micros(samples_ns: list[int]) -> dict[str, float]:
    values = np.asarray(samples_ns, dtype=np.float64) / 1000
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50_us": round(float(p50), 1), "p99_us": round(float(p99), 1),
            "mean_us": round(float(values.mean()), 1), "calls": len(samples_ns)}


def alternate(
    engines: dict[str, Callable[[npt.NDArray[np.float32]], Any]],
    batches: list[npt.NDArray[np.float32]],
) -> dict[str, dict[str, float]]:
    """Time each engine on every batch, switching engine every BLOCK calls."""
    timings: dict[str, list[int]] = {name: [] for name in engines}
    for start in range(0, len(batches), BLOCK):
        for name, engine in engines.items():
            for batch in batches[start : start + BLOCK]:
                began = time.perf_counter_ns()
                engine(batch)
                timings[name].append(time.perf_counter_ns() - began)
    return {name: _micros(samples) for name, samples in timings.items()}


def engines_of(model: ChampionModel) -> dict[str, Callable[[npt.NDArray[np.float32]], Any]]:
    """The worker's ONNX Runtime call and the same model through XGBoost's booster."""
    booster = model.booster()
    # One thread, as the worker's ONNX Runtime session has: the comparison is per call.
    booster.set_param({"nthread": 1})
    return {
        "onnxruntime": model.predict_matrix,
        "xgboost_inplace_predict": lambda matrix: booster.inplace_predict(matrix),
    }


def scoring_latency(model: ChampionModel, rows: list[LabeledRow], calls: int) -> dict[str, Any]:
    """One-row and 100-row latency of both engines, and their agreement."""
    matrix = model.matrix([row.features for row in rows])
    rng = np.random.default_rng(7)
    engines = engines_of(model)
    single = [matrix[i : i + 1] for i in rng.integers(0, len(matrix), calls)]
    hundred = [matrix[i : i + 100] for i in rng.integers(0, len(matrix) - 100, calls // 10)]
    for engine in engines.values():  # warm both up before timing
        engine(matrix[:100])
    results: dict[str, Any] = {}
    for label, batches in (("rows_1", single), ("rows_100", hundred)):
        timed = alternate(engines, batches)
        timed["onnx_to_xgboost_p50_ratio"] = round(
            timed["onnxruntime"]["p50_us"] / timed["xgboost_inplace_predict"]["p50_us"], 3
        )
        results[label] = timed
    onnx = model.predict_matrix(matrix)
    native = engines["xgboost_inplace_predict"](matrix)
    results["max_abs_difference_all_rows"] = float(np.max(np.abs(onnx - native)))
    results["rows_available"] = len(matrix)
    return results


def encoding_cost(model: ChampionModel, rows: list[LabeledRow], calls: int) -> dict[str, Any]:
    """Microseconds to turn feature dicts into the model's matrix, for 1 and 100 rows."""
    features = [row.features for row in rows]
    out = {}
    for size in (1, 100):
        samples = []
        for call in range(calls // (10 if size == 100 else 1)):
            start = (call * size) % (len(features) - size)
            began = time.perf_counter_ns()
            model.matrix(features[start : start + size])
            samples.append(time.perf_counter_ns() - began)
        out[f"rows_{size}"] = _micros(samples)
    return out


def river_cost(model: ChampionModel, rows: list[LabeledRow]) -> dict[str, Any]:
    """Challenger learn and predict microseconds per sample over the labelled rows, in order."""
    challenger = Challenger()
    inputs = [online_features(row.features) for row in rows]
    champion = model.predict_matrix(model.matrix([row.features for row in rows]))
    learn, predict = [], []
    for index, row in enumerate(rows):
        began = time.perf_counter_ns()
        challenger.predict([inputs[index]])
        predict.append(time.perf_counter_ns() - began)
        began = time.perf_counter_ns()
        challenger.learn(inputs[index], bool(row.churned), float(champion[index]))
        learn.append(time.perf_counter_ns() - began)
    return {
        "model": challenger.version,
        "features": len(inputs[0]),
        "learn": _micros(learn),
        "predict": _micros(predict),
        "progressive_auc": {variant: challenger.auc_of(variant)
                            for variant in ("champion", "challenger")},
    }


def run(calls: int, keep_postgres: bool) -> dict[str, Any]:
    """Train on CDNOW in the private PostgreSQL, then time both engines and River."""
    isolate_environment(BENCH_ENVIRONMENT)
    with private_postgres(keep=keep_postgres) as settings:
        load_cdnow(settings.postgres_url, progress=False)
        trained = train_model(settings, [CUTOFF], HORIZON_DAYS, register=True)
        model = ModelRegistry(settings.model_dir).load(trained.version)
        rows = labeled_rows(settings.postgres_url, CUTOFF, HORIZON_DAYS)
    log.info("model %s, %d feature rows at %s", trained.version, len(rows), CUTOFF)
    return {
        "model_version": trained.version,
        "model_columns": len(model.columns),
        "trees": trained.card["model"]["params"].get("n_estimators"),
        "max_depth": trained.card["model"]["params"].get("max_depth"),
        "latency": scoring_latency(model, rows, calls),
        "encoding": encoding_cost(model, rows, calls),
        "river": river_cost(model, rows),
    }


def main(argv: list[str] | None = None) -> int:
    """Run, merge into scoring.json, print a short table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000, help="single-row calls per engine")
    parser.add_argument("--output", type=Path, default=RESULTS / "scoring.json")
    parser.add_argument("--keep-postgres", action="store_true",
                        help="leave the quality benchmark's PostgreSQL running for a re-run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    machine = machine_info(("onnxruntime", "xgboost-cpu", "river", "numpy"))
    results = run(args.calls, args.keep_postgres)
    document = json.loads(args.output.read_text()) if args.output.exists() else {}
    document["latency"] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(time.monotonic() - started, 1),
        "machine": machine,
        "parameters": {"calls": args.calls, "cutoff": CUTOFF.isoformat(),
                       "horizon_days": HORIZON_DAYS, "data": "CDNOW feature rows at the cutoff"},
        "results": {key: value for key, value in results.items() if key != "river"},
    }
    document["river"] = results["river"]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    latency = results["latency"]
    for label in ("rows_1", "rows_100"):
        onnx, native = latency[label]["onnxruntime"], latency[label]["xgboost_inplace_predict"]
        print(f"{label:<9} onnxruntime p50 {onnx['p50_us']:>8.1f} us p99 {onnx['p99_us']:>8.1f}"
              f" | xgboost p50 {native['p50_us']:>8.1f} us p99 {native['p99_us']:>8.1f}"
              f" | ratio {latency[label]['onnx_to_xgboost_p50_ratio']}")
    river = results["river"]
    print(f"river     learn p50 {river['learn']['p50_us']} us, predict p50 "
          f"{river['predict']['p50_us']} us ({river['features']} features)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
