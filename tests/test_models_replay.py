"""Inline scoring on a real replay: CDNOW streamed in event time through a worker with a model.

The module runs first in the session (see conftest), while the event-time clock still follows
CDNOW: it loads the log up to 1997-09-30, trains a model, lets the worker score everyone, then
replays the next six months and kills the worker with SIGKILL half-way through. Every test
reads the outcome of that one replay.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import redis

from churnwire.config import Settings
from churnwire.data.cdnow import load_cdnow
from churnwire.embedded.process import read_pid, wait_for_exit
from churnwire.embedded.stack import Stack
from churnwire.models.champion import ChampionModel
from churnwire.models.online import Challenger
from churnwire.models.outcomes import CHECKPOINT
from churnwire.models.registry import ModelRegistry
from churnwire.models.training import train_model
from churnwire.state.features import (
    MICROS_PER_DAY,
    CustomerProfile,
    OrderFact,
    compute_features,
)
from churnwire.state.layout import RISK_BANDS, WATERMARK, alert_state_key, score_key
from churnwire.streams.pipeline import sweep_backlog
from churnwire.timeutil import end_of_day_micros
from churnwire.topics import CHURN_ALERTS
from tests.kafka_reader import TopicReader
from tests.pg import execute
from tests.worker_helpers import applied_events, drain

TRAIN_CUTOFF = date(1997, 6, 30)
REPLAY_START = date(1997, 9, 30)
REPLAY_END = date(1998, 3, 31)
REGULAR = "replay-lapsing"  # buys a few times before the replay starts, then never again


@dataclass
class Replay:
    """What the replay left behind."""

    version: str
    alerts: list[dict[str, Any]]
    regular_before: dict[str, str]
    labels_before_kill: int
    crossings: dict[str, int]


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.5)
    return result


def _redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, decode_responses=True)


def _at(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1_000_000)


def _choose_lapsing_buyer(model: ChampionModel, threshold: float) -> list[date]:
    """Order days of a buyer this model puts clearly below the threshold when the replay
    starts and clearly above it six months of silence later."""
    profile = CustomerProfile(REGULAR, _at(date(1997, 1, 1)))
    for months in ((1, 8, 9), (7, 8, 9), (1, 3, 5, 7, 9), (2, 9), (1, 9), (8, 9)):
        days = [date(1997, month, 25) for month in months]
        orders = [OrderFact(f"{REGULAR}-{d}", _at(d), 15.0, 1, "completed") for d in days]
        start, end = model.predict([
            compute_features(orders, profile, end_of_day_micros(moment))
            for moment in (REPLAY_START, REPLAY_END)
        ])
        if start < threshold - 0.05 and end > threshold + 0.02:
            return days
    raise AssertionError("the trained model has no lapsing buyer that crosses the threshold")


def _insert_buyer(url: str, days: list[date]) -> None:
    execute(url, "INSERT INTO customers (customer_id, signup_at) VALUES "
                 "($1, '1997-01-01T00:00:00Z') ON CONFLICT DO NOTHING", REGULAR)
    for day in days:
        execute(url, "INSERT INTO orders (order_id, customer_id, amount, items, created_at) "
                     "VALUES ($1, $2, 15.00, 1, $3) ON CONFLICT DO NOTHING",
                f"{REGULAR}-{day}", REGULAR, datetime(day.year, day.month, day.day, tzinfo=UTC))


def _labels_learnt(client: redis.Redis) -> int:
    return Challenger.from_checkpoint(client.get(CHECKPOINT)).labels


def _crossings(client: redis.Redis) -> dict[str, int]:
    counts = {}
    for key in client.scan_iter("cw:{*}:alert", count=1000):
        customer_id = key[len("cw:{"):-len("}:alert")]
        counts[customer_id] = int(client.hget(key, "crossings") or 0)
    return counts


def _kill_worker(stack: Stack) -> None:
    pid = read_pid(stack.worker.pid_file)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid, 10)


def _settled(client: redis.Redis) -> bool:
    """No inactivity check is due at the watermark: the sweep has caught up."""
    return sweep_backlog(client) == 0


@pytest.fixture(scope="module")
def replay(stack: Stack) -> Replay:
    settings = stack.settings
    url = settings.postgres_url
    client = _redis(settings)
    reader = TopicReader(settings, [CHURN_ALERTS])

    load_cdnow(url, until=REPLAY_START, progress=False)
    drain(settings)
    trained = train_model(settings, [TRAIN_CUTOFF], horizon_days=90)
    assert trained.registered, trained
    # A buyer whose orders all lie before the replay starts (late events, by then).
    registry = ModelRegistry(settings.model_dir)
    _insert_buyer(url, _choose_lapsing_buyer(registry.load(), settings.alert_threshold))
    # The worker follows the active model within seconds and re-scores every customer.
    wait_until(lambda: client.hget(score_key(REGULAR), "champion_version") == trained.version,
               120, "the regular buyer's first score")
    wait_until(lambda: _settled(client), 180, "the first sweep")
    regular_before = client.hgetall(score_key(REGULAR))

    applied_at_start = applied_events(settings.worker_metrics_port, settings.orders_topic)
    loader = threading.Thread(target=load_cdnow, args=(url,),
                              kwargs={"until": REPLAY_END, "progress": False})
    loader.start()
    wait_until(lambda: applied_events(settings.worker_metrics_port, settings.orders_topic)
               > applied_at_start + 5000, 180, "the replay to be under way")
    labels_before_kill = _labels_learnt(client)
    _kill_worker(stack)
    loader.join()
    stack.worker.start()
    stack.wait_healthy(stack.worker, timeout=120)
    drain(settings)
    wait_until(lambda: _settled(client), 300, "the sweep to catch up with the replay")

    crossings = {c: n for c, n in _crossings(client).items() if n}
    records = reader.collect(lambda rs: len(rs) >= sum(crossings.values()), timeout=120)
    time.sleep(3)  # anything sent twice would arrive now
    records = reader.collect(lambda rs: True, timeout=5)
    reader.close()
    client.close()
    return Replay(trained.version, [record.value for record in records],
                  regular_before, labels_before_kill, crossings)


def test_the_replay_raises_churn_alerts_with_the_contract_fields(replay: Replay) -> None:
    risks = [a for a in replay.alerts if a["type"] == "churn_risk"]
    assert len(risks) > 1000, f"{len(risks)} churn_risk alerts"
    start = datetime(1997, 9, 30, tzinfo=UTC)
    end = datetime(1998, 4, 1, tzinfo=UTC)
    for alert in risks:
        assert alert["model_version"] == replay.version and alert["variant"] == "champion"
        assert alert["probability"] >= alert["threshold"] == 0.8
        assert alert["risk_band"] == "high"
        assert start <= datetime.fromisoformat(alert["event_time"]) < end
        assert alert["top_features"] and {"feature", "value", "contribution"} <= set(
            alert["top_features"][0]
        )


def test_each_crossing_is_published_once_despite_the_kill(replay: Replay) -> None:
    ids = Counter(alert["alert_id"] for alert in replay.alerts)
    assert ids.most_common(1)[0][1] == 1, f"sent twice: {ids.most_common(3)}"
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for alert in replay.alerts:
        by_customer[alert["customer_id"]].append(alert)
    assert {c: len(a) for c, a in by_customer.items()} == replay.crossings
    for alerts in by_customer.values():
        alerts.sort(key=lambda a: int(a["alert_id"].rsplit(":", 1)[1]))
        types = [a["type"] for a in alerts]
        assert types == ["churn_risk", "recovered"] * (len(types) // 2) + (
            ["churn_risk"] if len(types) % 2 else []
        )


def test_a_customer_who_stops_buying_is_alerted_by_the_sweep(
    replay: Replay, settings: Settings
) -> None:
    assert float(replay.regular_before["probability"]) < 0.8, replay.regular_before
    [alert] = [a for a in replay.alerts if a["customer_id"] == REGULAR]
    assert alert["type"] == "churn_risk"
    # No event of this customer arrived after their last order: only the sweep scored them.
    assert datetime.fromisoformat(alert["event_time"]) > datetime(1997, 10, 1, tzinfo=UTC)

    client = _redis(settings)
    assert client.hget(score_key(REGULAR), "risk_cell") == "unknown|high"
    watermark = int(client.get(WATERMARK) or 0)
    scored_at = int(client.hget(score_key(REGULAR), "scored_at") or 0)
    assert client.hget(alert_state_key(REGULAR), "state") == "above"
    client.close()
    assert watermark - scored_at <= settings.sweep_interval_days * MICROS_PER_DAY


def test_the_risk_band_counts_match_the_scores(settings: Settings, replay: Replay) -> None:
    client = _redis(settings)
    counted = Counter()
    for key in client.scan_iter("cw:{*}:score", count=1000):
        counted[client.hget(key, "risk_cell")] += 1
    stored = {cell: int(n) for cell, n in client.hgetall(RISK_BANDS).items() if int(n)}
    client.close()
    assert stored == dict(counted) and sum(stored.values()) > 20_000


def test_the_challenger_learns_outcomes_and_its_checkpoint_survives_the_kill(
    replay: Replay, settings: Settings
) -> None:
    client = _redis(settings)
    challenger = Challenger.from_checkpoint(client.get(CHECKPOINT))
    client.close()
    assert challenger.labels > 1000 and challenger.labels >= replay.labels_before_kill
    champion_auc, challenger_auc = challenger.auc_of("champion"), challenger.auc_of("challenger")
    assert champion_auc is not None and champion_auc > 0.7
    assert challenger_auc is not None and challenger_auc > 0.6


def _churnwire(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "churnwire", *args],
                          capture_output=True, text=True, timeout=600)


def _models(*args: str) -> subprocess.CompletedProcess[str]:
    return _churnwire("models", *args)


def _listed_models() -> list[dict[str, Any]]:
    listed = _models("list", "--json")
    assert listed.returncode == 0, listed.stderr
    versions: list[dict[str, Any]] = json.loads(listed.stdout)
    return versions


def test_models_list_shows_versions_metrics_and_the_active_one(replay: Replay) -> None:
    versions = {model["version"]: model for model in _listed_models()}
    assert replay.version in versions
    assert [v for v, model in versions.items() if model["active"]] == [replay.version]
    model = versions[replay.version]
    assert model["created_at"] and 0.5 < model["metrics"]["auc"] <= 1.0


def test_score_writes_the_live_models_probability_for_every_customer(
    replay: Replay, stack: Stack, tmp_path: Path
) -> None:
    features, scores = tmp_path / "features.parquet", tmp_path / "scores.parquet"
    built = _churnwire("features", "build", "--as-of", TRAIN_CUTOFF.isoformat(),
                       "--out", str(features))
    assert built.returncode == 0, built.stderr
    scored = _churnwire("score", "--features", str(features), "--out", str(scores))
    assert scored.returncode == 0, scored.stderr

    table = pq.read_table(scores)
    assert table.column_names == ["customer_id", "churn_probability"]
    assert table.schema.metadata[b"model_version"].decode() == replay.version
    rows = pq.read_table(features).to_pylist()
    assert table.column("customer_id").to_pylist() == [row["customer_id"] for row in rows]
    model = ModelRegistry(stack.settings.model_dir).load(replay.version)
    expected = model.predict(rows[:50])
    actual = table.column("churn_probability").to_pylist()[:50]
    assert max(abs(a - b) for a, b in zip(actual, expected, strict=True)) < 1e-9


def test_score_refuses_a_file_that_is_not_a_feature_table(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.parquet"
    bogus.write_text("customer_id,amount\n1,2\n")
    scored = _churnwire("score", "--features", str(bogus), "--out", str(tmp_path / "s.parquet"))
    assert scored.returncode == 1
    assert "not a readable Parquet file" in scored.stderr and "Traceback" not in scored.stderr


def test_promote_switches_the_live_model_without_a_restart(
    replay: Replay, stack: Stack
) -> None:
    settings = stack.settings
    pid = read_pid(stack.worker.pid_file)
    trained = _churnwire("train", "--cutoff", TRAIN_CUTOFF.isoformat(), "--horizon", "90",
                         "--seed", "8")
    assert trained.returncode == 0, trained.stderr
    second = max(_listed_models(), key=lambda model: model["created_at"])
    assert second["version"] != replay.version and not second["active"]
    assert second["version"] in trained.stdout
    assert ModelRegistry(settings.model_dir).active_version() == replay.version

    promoted = _models("promote", second["version"])
    assert promoted.returncode == 0, promoted.stderr
    client = _redis(settings)
    wait_until(
        lambda: client.hget(score_key(REGULAR), "champion_version") == second["version"],
        120, "scores from the promoted model",
    )
    client.close()
    assert read_pid(stack.worker.pid_file) == pid, "the worker was not restarted"


def test_a_corrupt_model_is_refused_and_the_serving_one_keeps_serving(
    replay: Replay, stack: Stack, unique: str
) -> None:
    settings = stack.settings
    registry = ModelRegistry(settings.model_dir)
    serving = registry.active_version()
    assert serving is not None and serving != replay.version
    # The first model, no longer active, gets its ONNX file garbled on disk.
    (settings.model_dir / replay.version / "model.onnx").write_bytes(b"not an onnx model")

    refused = _models("promote", replay.version)
    assert refused.returncode != 0
    assert replay.version in refused.stderr and "model.onnx" in refused.stderr
    assert registry.active_version() == serving

    # Even if the active pointer is forced onto the broken version, the worker keeps serving.
    (settings.model_dir / "ACTIVE").write_text(replay.version + "\n")
    time.sleep(5)
    execute(settings.postgres_url, "INSERT INTO customers (customer_id, signup_at) VALUES "
                                   "($1, '1998-03-01T00:00:00Z')", unique)
    execute(settings.postgres_url, "INSERT INTO orders (order_id, customer_id, amount, "
                                   "created_at) VALUES ($1, $1, 20.00, '1998-03-30T00:00:00Z')",
            unique)
    client = _redis(settings)
    version = wait_until(lambda: client.hget(score_key(unique), "champion_version"), 60,
                         "the new customer's score")
    client.close()
    assert version == serving
    failures = _metric(settings.worker_metrics_port, "churnwire_model_load_failures_total")
    assert failures >= 1
    (settings.model_dir / "ACTIVE").write_text(f"{serving}\n")


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0
