"""The cost estimate's arithmetic, on price and benchmark files written by the tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from churnwire.deploy.benchmarks import MEASUREMENTS, read_measurement
from churnwire.deploy.cost import (
    DOCUMENTED_BYTES_PER_CUSTOMER,
    REDIS_HEADROOM,
    SECONDS_PER_DAY,
    Workload,
    estimate_cost,
    load_prices,
    peak_events_per_second,
)

# Round prices so the expected totals can be worked out by hand.
PRICES = {
    "region": "test-1", "pricing": "test", "recorded_on": "2026-12-04",
    "hours_per_month": 100,
    "prices": {name: {"usd": 1.0, "unit": "u", "source": "test"} for name in (
        "eks_cluster_hour", "ec2_m6i_large_hour", "ebs_gp3_gb_month", "msk_kafka_m7g_large_hour",
        "msk_storage_gb_month", "elasticache_cache_r7g_large_hour",
        "rds_postgres_db_m6g_large_hour", "rds_gp3_gb_month", "nat_gateway_hour", "alb_hour",
        "s3_standard_gb_month", "secrets_manager_secret_month", "kms_key_month",
    )},
    "capacity": {"ec2_m6i_large_vcpu": 2, "ec2_m6i_large_memory_gib": 8,
                 "elasticache_cache_r7g_large_memory_gib": 13.07},
}


def _results(folder: Path, **documents: dict) -> Path:
    for name, document in documents.items():
        (folder / f"{name}.json").write_text(json.dumps(document))
    return folder


def _line(estimate, prefix: str):  # type: ignore[no-untyped-def]
    (line,) = [line for line in estimate.lines if line.item.startswith(prefix)]
    return line


def test_peak_rate_adds_the_sweep_and_scales_by_the_peak_factor() -> None:
    workload = Workload(customers=70_000, orders_per_day=8_640, events_per_order=2,
                        peak_factor=3, sweep_interval_days=7)
    assert peak_events_per_second(workload) == pytest.approx(
        (8_640 * 2 + 10_000) / SECONDS_PER_DAY * 3)


def test_workers_follow_the_measured_rate(tmp_path: Path) -> None:
    results = _results(
        tmp_path,
        scoring={"worker": {"results": {"median_events_per_second": {"on": 10.0}}}},
        cdc={"results": {"throughput": {"events_per_second": 1000}}},
        gateway={"results": {"summary": {"churnwire": {"unthrottled_rps": 100}}}},
    )
    # 86,400 orders a day at a peak factor of 3: 3 events/s, plus the sweep's 0.7 a second.
    workload = Workload(customers=420_000, orders_per_day=SECONDS_PER_DAY * 10,
                        lookups_per_day=SECONDS_PER_DAY * 50, peak_factor=1.0)
    estimate = estimate_cost(workload, PRICES, results)
    peak = 10 + 420_000 / 7 / SECONDS_PER_DAY  # 10.69 events/s: two workers of 10/s
    assert peak_events_per_second(workload) == pytest.approx(peak)
    nodes = _line(estimate, "EKS nodes")
    assert "2 worker(s), 2 gateway(s)" in nodes.item
    # 5 processes of 1 vCPU on nodes with 1.6 allocatable vCPU: 4 nodes at 100 h x 1 USD.
    assert nodes.quantity == 4 and nodes.monthly_usd == pytest.approx(400)
    assert estimate.warnings == [
        "/".join([str(results), "stream.json"]) + " is missing (run benchmarks/ to measure "
        "redis_bytes_per_customer); using the figure measured on CDNOW in docs/state.md "
        f"({DOCUMENTED_BYTES_PER_CUSTOMER:g} B)"
    ]


def test_missing_benchmarks_price_the_minimum_and_say_so(tmp_path: Path) -> None:
    estimate = estimate_cost(Workload(customers=1000, orders_per_day=100), PRICES, tmp_path)
    assert "1 worker(s), 2 gateway(s)" in _line(estimate, "EKS nodes").item
    text = "\n".join(estimate.warnings)
    for file in ("cdc.json", "scoring.json", "stream.json", "gateway.json"):
        assert f"{tmp_path / file} is missing" in text
    assert "a lower bound" in text


def test_total_and_per_customer_add_up(tmp_path: Path) -> None:
    results = _results(tmp_path, stream={"results": {
        "redis_memory": {"used_memory_delta_bytes_per_customer": 1000},
        "median_worker_events_per_second": 5000}})
    workload = Workload(customers=50_000, orders_per_day=1000, redis_replicas=1)
    estimate = estimate_cost(workload, PRICES, results)
    redis = _line(estimate, "ElastiCache")
    assert redis.quantity == 2  # one primary, one replica
    assert f"{50_000 * 1000 * REDIS_HEADROOM / 2**30:.2f} GiB" in redis.item
    # At 1 USD a unit: 4 processes (1 CDC, 1 worker, 2 gateways) on 1.6-vCPU nodes: 3 nodes
    # x100, control plane 100, volume 1, Redis 2x100, MSK 3x100 + 300 GB, NAT 3x100, ALB 100,
    # 2 secrets, 1 key, 1 GB of S3.
    assert _line(estimate, "EKS nodes").quantity == 3
    assert estimate.monthly_usd == pytest.approx(300 + 100 + 1 + 200 + 300 + 300 + 300 + 100
                                                 + 2 + 1 + 1)
    assert estimate.per_customer(50_000) == pytest.approx(estimate.monthly_usd / 50_000)


def test_the_database_is_priced_only_when_asked(tmp_path: Path) -> None:
    without = estimate_cost(Workload(customers=10, orders_per_day=1), PRICES, tmp_path)
    with_db = estimate_cost(Workload(customers=10, orders_per_day=1, include_database=True),
                            PRICES, tmp_path)
    assert with_db.monthly_usd - without.monthly_usd == pytest.approx(2 * 100 + 100 * 2)


def test_measurements_are_read_by_key_path_and_bad_values_refused(tmp_path: Path) -> None:
    _results(tmp_path, cdc={"results": {"throughput": {"events_per_second": True}}})
    found = read_measurement("cdc_events_per_second", tmp_path)
    assert found.value is None and "has none of results.throughput.events_per_second" in (
        found.origin)
    (tmp_path / "gateway.json").write_text("{")
    assert "is not JSON" in read_measurement("gateway_requests_per_second", tmp_path).origin
    assert set(MEASUREMENTS) >= {"cdc_events_per_second", "worker_events_per_second"}


def test_the_real_cdc_result_is_readable() -> None:
    found = read_measurement("cdc_events_per_second")
    assert found.value is not None and found.value > 0, found.origin


def test_every_price_has_a_source_and_the_file_a_date() -> None:
    prices = load_prices()
    assert prices["recorded_on"] and "check" in prices["provenance"].lower()
    for name, entry in prices["prices"].items():
        assert entry["usd"] > 0 and entry["source"].startswith("https://"), name


def test_the_command_prints_dollars_per_customer() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "churnwire", "cost", "--customers", "100000",
         "--orders-per-day", "5000"], capture_output=True, text=True, timeout=60, check=True,
    )
    assert "USD per customer per month" in done.stdout
    assert "cdc_events_per_second = " in done.stdout
