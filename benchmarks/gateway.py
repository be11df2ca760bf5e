"""Gateway benchmark: single-customer lookups against Feast's feature server, and freshness.

Starts a private embedded stack under ``.churnwire-bench-gateway/``, loads a synthetic shop
(10,000 customers, 100,000 orders by default) through Debezium, trains a model so lookups
carry a churn score, waits until the worker is idle, and creates a read key. Then, in one run:

* the same answers (every feature and the churn fields, read back from the gateway's batch
  lookup) are written into Feast's Redis online store on the same Redis server, and Feast's
  Python feature server is started (own venv, ``--workers 2 --no-access-log --max-requests 0``);
* wrk (a separate process, one thread) sends ``GET /v1/customers/{id}`` with a Bearer key to
  the gateway and ``POST /get-online-features`` for the same customer to Feast, rotating over
  every customer id in a shuffled order (``benchmarks/gateway_load.lua``), at a fixed rate
  (1,000 requests/s), unthrottled, and in steps of fixed rates until p99 exceeds 5 ms; the two
  servers alternate at every measurement, the first one swapping each round;
* commit-to-lookup freshness: an order is inserted into PostgreSQL and the gateway is polled
  until the customer's ``orders_lifetime`` counts it.

Usage: ``.venv/bin/python benchmarks/gateway.py [--rounds N] [--gateway-workers N]``. Needs
``wrk`` (``apt-get install -y wrk``; installed automatically when run as root). Results go to
``benchmarks/results/gateway.json``; a table is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
import httpx
from _stack import (
    REPO,
    RESULTS,
    bench_environment,
    isolate_environment,
    machine_info,
    percentiles_ms,
    private_stack,
    process_cpu_seconds,
)

from churnwire.config import Settings
from churnwire.data.synthetic import load_synthetic
from churnwire.embedded.stack import Stack
from churnwire.gateway.keys import create_api_key
from churnwire.models.training import train_model
from churnwire.state.features import FEATURES
from churnwire.streams.idle import wait_idle

log = logging.getLogger("benchmarks.gateway")

BENCH_HOME = REPO / ".churnwire-bench-gateway"
# One key sends every request; the default 2,000/s per key would answer 429 in the search.
BENCH_ENVIRONMENT = bench_environment(
    BENCH_HOME.name, 90, CHURNWIRE_GATEWAY_RATE_LIMIT="1000000", CHURNWIRE_INSIGHTS="off"
)
FEAST_PORT = 28187
FEAST_DIR = REPO / ".churnwire-bench-feast"
FEAST_VENV = FEAST_DIR / "venv"
FEAST_VERSION = "0.67.0"
LUA_SCRIPT = REPO / "benchmarks" / "gateway_load.lua"
FEAST_PEER = REPO / "benchmarks" / "feast_peer.py"

TRAINING_CUTOFF = date(2024, 9, 1)
FIXED_RATE = 1000
STEP_RATES = (250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 3500, 4000, 5000, 6000, 8000)
P99_LIMIT_MS = 5.0
TARGET_P99_MS = 2.0
ACHIEVED_SHARE = 0.95  # a step passes only if at least this share of the rate was served
CONNECTIONS = 32
SERVERS = ("churnwire", "feast")
CHURN_COLUMNS = (("churn_probability", "float"), ("model_version", "string"),
                 ("risk_band", "string"), ("scored_at", "string"))


def load_tool() -> str:
    """The wrk binary; installed from Debian when running as root, else how to install it."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("benchmarks/gateway.py needs wrk: sudo apt-get install -y wrk")
    log.info("installing wrk from Debian")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which("wrk") or "wrk"


# --- the shop --------------------------------------------------------------------------------

async def _customer_ids(postgres_url: str) -> list[str]:
    connection = await asyncpg.connect(postgres_url)
    try:
        rows = await connection.fetch("SELECT customer_id FROM customers ORDER BY customer_id")
    finally:
        await connection.close()
    return [row["customer_id"] for row in rows]


def prepare_shop(stack: Stack, customers: int, orders: int) -> dict[str, Any]:
    """Load the shop with the worker stopped, train a model, then let the worker fold it all."""
    settings = stack.settings
    stack.worker.stop()
    report = load_synthetic(settings.postgres_url, customers, orders, seed=11, progress=False)
    log.info("%s", report.summary())
    trained = train_model(settings, [TRAINING_CUTOFF], horizon_days=90)
    stack.worker.start()
    stack.wait_healthy(stack.worker, 180)
    idle = wait_idle(settings, timeout=1200)
    if not idle.idle:
        raise RuntimeError(f"pipeline not idle after {idle.seconds:.0f} s: {idle.waiting_for}")
    log.info("pipeline idle after %.1f s", idle.seconds)
    return {"model_version": trained.version, "idle_after_seconds": round(idle.seconds, 1)}


def snapshot_answers(gateway: str, key: str, customer_ids: list[str]) -> list[dict[str, Any]]:
    """Every customer's lookup answer, through the gateway's batch lookup."""
    answers: list[dict[str, Any]] = []
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as client:
        for start in range(0, len(customer_ids), 1000):
            reply = client.post("/v1/customers/lookup",
                                json={"customer_ids": customer_ids[start:start + 1000]})
            reply.raise_for_status()
            body = reply.json()
            if body["not_found"]:
                raise RuntimeError(f"{len(body['not_found'])} customers unknown to the gateway")
            answers.extend(body["customers"])
    return answers


def feast_schema() -> list[tuple[str, str]]:
    """Feast column kinds: every feature (timestamps as the ISO text we answer), churn fields."""
    kinds = {"timestamp": "string"}
    return [(spec.name, kinds.get(spec.kind, spec.kind)) for spec in FEATURES] + list(
        CHURN_COLUMNS
    )


def feast_row(answer: dict[str, Any]) -> dict[str, Any]:
    """One customer's answer flattened into Feast's columns."""
    churn = answer["churn"] or {}
    return {
        "customer_id": answer["customer_id"],
        **answer["features"],
        "churn_probability": churn.get("probability"),
        "model_version": churn.get("model_version"),
        "risk_band": churn.get("risk_band"),
        "scored_at": churn.get("scored_at"),
    }


# --- Feast -----------------------------------------------------------------------------------

def ensure_feast_venv() -> Path:
    """Feast's own venv (it pins pandas below 3, so never churnwire's .venv)."""
    feast = FEAST_VENV / "bin" / "feast"
    if not feast.exists():
        log.info("creating %s with feast[redis]==%s", FEAST_VENV, FEAST_VERSION)
        subprocess.run([sys.executable, "-m", "venv", str(FEAST_VENV)], check=True)
        subprocess.run([str(FEAST_VENV / "bin" / "pip"), "install", "-q",
                        f"feast[redis]=={FEAST_VERSION}"], check=True)
    return feast


@contextmanager
def feast_server(settings: Settings, answers: list[dict[str, Any]]) -> Iterator[tuple[str, int]]:
    """Load the answers into Feast's online store and serve them; stop the server on exit."""
    feast = ensure_feast_venv()
    repo = FEAST_DIR / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    work = FEAST_DIR / "input"
    work.mkdir(parents=True, exist_ok=True)
    rows_path = work / "rows.jsonl"
    rows_path.write_text("".join(json.dumps(feast_row(a)) + "\n" for a in answers))
    schema_path = work / "schema.json"
    schema_path.write_text(json.dumps(feast_schema()))
    redis_address = f"127.0.0.1:{settings.redis_port}"
    subprocess.run([str(FEAST_VENV / "bin" / "python"), str(FEAST_PEER), str(repo),
                    redis_address, str(rows_path), str(schema_path)], check=True)

    log_path = FEAST_DIR / "feast-serve.log"
    with open(log_path, "w") as log_stream:
        server = subprocess.Popen(
            [str(feast), "-c", str(repo), "serve", "-h", "127.0.0.1", "-p", str(FEAST_PORT),
             "--workers", "2", "--no-access-log", "--max-requests", "0"],
            stdout=log_stream, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{FEAST_PORT}"
    try:
        _wait_for_feast(url, answers[0]["customer_id"], server)
        log.info("Feast feature server up at %s (pid %d)", url, server.pid)
        yield url, server.pid
    finally:
        _stop_group(server)
        log.info("Feast feature server stopped")


def feast_request(customer_ids: list[str]) -> dict[str, Any]:
    """The body of Feast's /get-online-features for every column of the view."""
    return {"features": [f"customer_churn:{name}" for name, _ in feast_schema()],
            "entities": {"customer_id": customer_ids}}


def _wait_for_feast(url: str, customer_id: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"feast serve exited with {server.returncode}; see its log")
        try:
            httpx.post(f"{url}/get-online-features", json=feast_request([customer_id]),
                       timeout=5).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(1.0)
    raise RuntimeError("Feast's feature server did not answer within 180 s")


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group this benchmark started, SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def check_same_answers(feast: str, answers: list[dict[str, Any]], sample: int = 50) -> int:
    """Compare Feast's values with ours for a sample of customers; return how many compared."""
    chosen = random.Random(3).sample(answers, min(sample, len(answers)))
    reply = httpx.post(f"{feast}/get-online-features",
                       json=feast_request([a["customer_id"] for a in chosen]), timeout=30)
    reply.raise_for_status()
    body = reply.json()
    names = body["metadata"]["feature_names"]
    columns = {name: result["values"] for name, result in zip(names, body["results"], strict=True)}
    for index, answer in enumerate(chosen):
        expected = feast_row(answer)
        for name, value in expected.items():
            served = columns[name][index]
            same = (abs(served - value) < 1e-9 if isinstance(value, float) and served is not None
                    else served == value)
            if not same:
                raise RuntimeError(f"Feast serves {name}={served!r} for {answer['customer_id']}, "
                                   f"the gateway {value!r}")
    return len(chosen)


# --- load ------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # the parent pid, field 4 of stat(5)
            found.append(int(stat.parent.name))
    return found


def server_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a server process and its direct children (its workers)."""
    total = 0.0
    for member in (pid, *_children(pid)):
        try:
            total += process_cpu_seconds(member)
        except OSError:
            continue  # a worker that exited between the listing and the read
    return total


def run_wrk(wrk: str, target: str, url: str, extra: str, ids_path: Path, rate: int,
            seconds: int, server_pid: int) -> dict[str, Any]:
    """One wrk run (one thread) at ``rate`` requests/s (0: unthrottled); its figures."""
    load_before = os.getloadavg()[0]
    cpu_before = server_cpu_seconds(server_pid)
    command = [wrk, "-t", "1", "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--timeout", "2s",
               "-s", str(LUA_SCRIPT), url, "--", target, str(ids_path), str(rate), "1", extra]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in finished.stdout.splitlines() if x.startswith("CWRESULT ")), None)
    if finished.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr.strip()}")
    raw = json.loads(line.removeprefix("CWRESULT "))
    server_cpu = server_cpu_seconds(server_pid) - cpu_before
    errors = sum(v for k, v in raw.items() if k.startswith("errors_"))
    achieved = raw["requests"] / (raw["duration_us"] / 1e6)
    return {
        "server": target,
        "rate": rate,
        "seconds": seconds,
        "requests": raw["requests"],
        "achieved_rps": round(achieved, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 3),
        "p90_ms": round(raw["p90_us"] / 1000, 3),
        "p99_ms": round(raw["p99_us"] / 1000, 3),
        "p999_ms": round(raw["p999_us"] / 1000, 3),
        "max_ms": round(raw["max_us"] / 1000, 3),
        "errors": errors,
        "bytes_per_response": round(raw["bytes"] / max(raw["requests"], 1)),
        # CPU the server used per request: the figure least changed by other load on the box.
        "server_cpu_ms_per_request": round(1000 * server_cpu / max(raw["requests"], 1), 3),
        "load_average_1m_before": round(load_before, 2),
    }


def passes(measured: dict[str, Any]) -> bool:
    """Whether a step served its rate with no error and p99 within the limit."""
    return (measured["errors"] == 0 and measured["p99_ms"] <= P99_LIMIT_MS
            and measured["achieved_rps"] >= ACHIEVED_SHARE * measured["rate"])


class LoadRunner:
    """Runs wrk against either server with the right request and extra argument."""

    def __init__(self, wrk: str, urls: dict[str, str], extras: dict[str, str], ids: Path,
                 pids: dict[str, int]) -> None:
        self.wrk = wrk
        self.urls = urls
        self.extras = extras
        self.ids = ids
        self.pids = pids

    def measure(self, server: str, rate: int, seconds: int) -> dict[str, Any]:
        """One measurement of ``server``, logged."""
        measured = run_wrk(self.wrk, server, self.urls[server], self.extras[server], self.ids,
                           rate, seconds, self.pids[server])
        log.info("%-9s rate %5s: %7.1f rps, p50 %.2f ms, p99 %.2f ms, errors %d (load %.2f)",
                 server, rate or "max", measured["achieved_rps"], measured["p50_ms"],
                 measured["p99_ms"], measured["errors"], measured["load_average_1m_before"])
        return measured


def one_round(runner: LoadRunner, order: tuple[str, ...], fixed_seconds: int,
              step_seconds: int) -> dict[str, Any]:
    """Fixed rate, unthrottled, then the step search, alternating the servers at each point."""
    fixed = {server: runner.measure(server, FIXED_RATE, fixed_seconds) for server in order}
    unthrottled = {server: runner.measure(server, 0, step_seconds) for server in order}
    steps: dict[str, list[dict[str, Any]]] = {server: [] for server in order}
    searching = list(order)
    for rate in STEP_RATES:
        for server in list(searching):
            measured = runner.measure(server, rate, step_seconds)
            measured["passes"] = passes(measured)
            steps[server].append(measured)
            if not measured["passes"]:
                searching.remove(server)
        if not searching:
            break
    highest = {
        server: max((s["rate"] for s in steps[server] if s["passes"]), default=0)
        for server in order
    }
    return {"order": list(order), "fixed_rate": fixed, "unthrottled": unthrottled,
            "steps": steps, "highest_rate_p99_within_limit": highest}


# --- freshness -------------------------------------------------------------------------------

INSERT_ORDER = """
INSERT INTO orders (order_id, customer_id, amount, items, category, status, created_at)
VALUES ($1, $2, 19.90, 1, 'books', 'completed', $3)
"""


async def _orders_lifetime(client: httpx.AsyncClient, customer_id: str) -> int:
    reply = await client.get(f"/v1/customers/{customer_id}")
    reply.raise_for_status()
    return int(reply.json()["features"]["orders_lifetime"])


async def _freshness(postgres_url: str, gateway: str, key: str, customer_ids: list[str],
                     pause: float, poll: float) -> list[float]:
    seconds: list[float] = []
    connection = await asyncpg.connect(postgres_url)
    try:
        # Event times just after the shop's last order: a jump to the wall clock would move the
        # watermark by years and make the worker re-score every customer (inactivity sweep).
        latest = await connection.fetchval("SELECT max(created_at) FROM orders")
        async with httpx.AsyncClient(base_url=gateway, timeout=10,
                                     headers={"Authorization": f"Bearer {key}"}) as client:
            for number, customer_id in enumerate(customer_ids, start=1):
                before = await _orders_lifetime(client, customer_id)
                await connection.execute(INSERT_ORDER, f"bench-fresh-{uuid.uuid4().hex}",
                                         customer_id, latest + timedelta(seconds=number))
                committed = time.perf_counter()
                while await _orders_lifetime(client, customer_id) <= before:
                    if time.perf_counter() - committed > 60:
                        raise RuntimeError(f"order of {customer_id} not visible after 60 s")
                    await asyncio.sleep(poll)
                seconds.append(time.perf_counter() - committed)
                await asyncio.sleep(pause)
    finally:
        await connection.close()
    return seconds


def measure_freshness(settings: Settings, gateway: str, key: str, customer_ids: list[str],
                      orders: int, pause: float, poll: float) -> dict[str, Any]:
    """Commit-to-lookup time of ``orders`` orders, one at a time, each for another customer."""
    chosen = random.Random(5).sample(customer_ids, orders)
    seconds = asyncio.run(_freshness(settings.postgres_url, gateway, key, chosen, pause, poll))
    return {"orders": orders, "pause_between_orders_seconds": pause,
            "poll_interval_seconds": poll, **percentiles_ms(seconds)}


# --- the run ---------------------------------------------------------------------------------

def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds per server, and our figures as ratios to Feast's."""
    def med(section: str, field: str, server: str) -> float:
        return float(median(r[section][server][field] for r in rounds))

    summary: dict[str, Any] = {}
    for server in SERVERS:
        summary[server] = {
            "fixed_rate_rps": FIXED_RATE,
            "fixed_rate_achieved_rps": med("fixed_rate", "achieved_rps", server),
            "fixed_rate_p50_ms": med("fixed_rate", "p50_ms", server),
            "fixed_rate_p99_ms": med("fixed_rate", "p99_ms", server),
            "unthrottled_rps": med("unthrottled", "achieved_rps", server),
            "unthrottled_p99_ms": med("unthrottled", "p99_ms", server),
            "fixed_rate_server_cpu_ms_per_request": med("fixed_rate",
                                                        "server_cpu_ms_per_request", server),
            "highest_rate_p99_within_5ms": float(median(
                r["highest_rate_p99_within_limit"][server] for r in rounds)),
        }
    ours, feast = summary["churnwire"], summary["feast"]

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    summary["ratios_churnwire_to_feast"] = {
        "fixed_rate_p99": ratio(ours["fixed_rate_p99_ms"], feast["fixed_rate_p99_ms"]),
        "fixed_rate_p50": ratio(ours["fixed_rate_p50_ms"], feast["fixed_rate_p50_ms"]),
        "unthrottled_throughput": ratio(ours["unthrottled_rps"], feast["unthrottled_rps"]),
        "fixed_rate_server_cpu_per_request": ratio(ours["fixed_rate_server_cpu_ms_per_request"],
                                                   feast["fixed_rate_server_cpu_ms_per_request"]),
        "highest_rate_p99_within_5ms": ratio(ours["highest_rate_p99_within_5ms"],
                                             feast["highest_rate_p99_within_5ms"]),
    }
    summary["target_p99_2ms_at_1000rps_met"] = ours["fixed_rate_p99_ms"] <= TARGET_P99_MS
    return summary


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Stack, shop, key, Feast; then the rounds of load and the freshness measurement."""
    wrk = load_tool()
    isolate_environment({**BENCH_ENVIRONMENT,
                         "CHURNWIRE_GATEWAY_WORKERS": str(args.gateway_workers)})
    with private_stack() as stack:
        settings = stack.settings
        shop = prepare_shop(stack, args.customers, args.orders)
        key = create_api_key(settings.redis_url, "gateway-benchmark", "read")
        gateway = f"http://127.0.0.1:{settings.gateway_port}"
        customer_ids = asyncio.run(_customer_ids(settings.postgres_url))
        random.Random(1).shuffle(customer_ids)
        answers = snapshot_answers(gateway, key, customer_ids)
        scored = sum(1 for a in answers if a["churn"] is not None)
        ids_path = settings.home / "bench-customer-ids.txt"
        ids_path.write_text("".join(f"{c}\n" for c in customer_ids))
        refs_path = settings.home / "bench-feast-features.txt"

        # Lookups need only Redis; the idle worker and CDC poll the embedded Kafka and would
        # take part of the 2 cores from both servers. They are back for the freshness run.
        stack.worker.stop()
        stack.cdc.stop()
        gateway_pid = stack.gateway.status().pid
        assert gateway_pid is not None
        with feast_server(settings, answers) as (feast, feast_pid):
            compared = check_same_answers(feast, answers)
            refs_path.write_text("".join(f"{f}\n" for f in feast_request([])["features"]))
            runner = LoadRunner(wrk, {"churnwire": gateway, "feast": feast},
                                {"churnwire": key, "feast": str(refs_path)}, ids_path,
                                {"churnwire": gateway_pid, "feast": feast_pid})
            for server in SERVERS:  # warm-up, not recorded
                runner.measure(server, 500, 3)
            rounds = []
            for number in range(args.rounds):
                order = SERVERS if number % 2 == 0 else SERVERS[::-1]
                rounds.append(one_round(runner, order, args.fixed_seconds, args.step_seconds))
        for component in (stack.cdc, stack.worker):
            component.start()
            stack.wait_healthy(component, 180)
        freshness = measure_freshness(settings, gateway, key, customer_ids, args.fresh_orders,
                                      pause=0.25, poll=0.002)
    return {
        "shop": {**shop, "customers": len(customer_ids), "customers_scored": scored},
        "feast_values_checked_against_gateway": compared,
        "summary": summarize(rounds),
        "freshness": freshness,
        "rounds": rounds,
    }


def report(document: dict[str, Any]) -> str:
    """The results as a short text table."""
    summary = document["results"]["summary"]
    ours, feast = summary["churnwire"], summary["feast"]
    ratios = summary["ratios_churnwire_to_feast"]
    fresh = document["results"]["freshness"]
    rows = [
        ("p50 at 1,000 rps (ms)", ours["fixed_rate_p50_ms"], feast["fixed_rate_p50_ms"],
         ratios["fixed_rate_p50"]),
        ("p99 at 1,000 rps (ms)", ours["fixed_rate_p99_ms"], feast["fixed_rate_p99_ms"],
         ratios["fixed_rate_p99"]),
        ("served at 1,000 rps (rps)", ours["fixed_rate_achieved_rps"],
         feast["fixed_rate_achieved_rps"], None),
        ("highest rate, p99 <= 5 ms (rps)", ours["highest_rate_p99_within_5ms"],
         feast["highest_rate_p99_within_5ms"], ratios["highest_rate_p99_within_5ms"]),
        ("unthrottled throughput (rps)", ours["unthrottled_rps"], feast["unthrottled_rps"],
         ratios["unthrottled_throughput"]),
        ("unthrottled p99 (ms)", ours["unthrottled_p99_ms"], feast["unthrottled_p99_ms"], None),
        ("server CPU per request (ms)", ours["fixed_rate_server_cpu_ms_per_request"],
         feast["fixed_rate_server_cpu_ms_per_request"],
         ratios["fixed_rate_server_cpu_per_request"]),
    ]
    lines = [f"{'':34}{'churnwire':>12}{'Feast':>12}{'ratio':>9}"]
    for label, a, b, r in rows:
        lines.append(f"{label:34}{a:>12,.2f}{b:>12,.2f}{'' if r is None else f'{r:.3f}':>9}")
    lines.append(f"freshness, commit to lookup (ms): p50 {fresh['p50_ms']}, p99 {fresh['p99_ms']}"
                 f" over {fresh['count']} orders")
    loads = document["machine"]["load_average_1_5_15"], document["load_average_after"]
    lines.append(f"load average (1, 5, 15 min) before: {loads[0]}, after: {loads[1]}")
    lines.append(f"target p99 <= {TARGET_P99_MS} ms at 1,000 rps met: "
                 f"{summary['target_p99_2ms_at_1000rps_met']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write gateway.json and print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement")
    parser.add_argument("--fixed-seconds", type=int, default=10, help="seconds at 1,000 rps")
    parser.add_argument("--step-seconds", type=int, default=5, help="seconds per search step")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--fresh-orders", type=int, default=100, help="orders for freshness")
    parser.add_argument("--gateway-workers", type=int, default=1,
                        help="uvicorn worker processes of the gateway")
    parser.add_argument("--output", type=Path, default=RESULTS / "gateway.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    started = time.monotonic()
    document: dict[str, Any] = {
        "benchmark": "gateway",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": None,
        "machine": machine_info(("starlette", "uvicorn", "uvloop", "httptools", "redis",
                                 "hiredis")),
        "parameters": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "load_tool": "wrk 4.1 (Debian), 1 thread, paced by benchmarks/gateway_load.lua",
            "connections": CONNECTIONS, "fixed_rate_rps": FIXED_RATE,
            "step_rates_rps": list(STEP_RATES), "p99_limit_ms": P99_LIMIT_MS,
            "step_passes_if": f"no errors, p99 <= {P99_LIMIT_MS} ms, served >= "
                              f"{ACHIEVED_SHARE:.0%} of the rate",
            "gateway_rate_limit_per_key": BENCH_ENVIRONMENT["CHURNWIRE_GATEWAY_RATE_LIMIT"],
            "gateway": "churnwire gateway as the stack starts it: uvicorn, uvloop, httptools, "
                       "no access log, CHURNWIRE_CLOCK=event",
            "pipeline_during_lookup_load": "CDC and worker stopped (Redis, Kafka, Postgres up)",
            "feast": f"feast[redis]=={FEAST_VERSION}, feast serve --workers 2 --no-access-log "
                     "--max-requests 0, one feature view with every column, same Redis server",
        },
    }
    document["results"] = run(args)
    document["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    document["duration_seconds"] = round(time.monotonic() - started, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(report(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
