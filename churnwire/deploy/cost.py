"""``churnwire cost``: dollars per customer per month on AWS, from measured throughputs.

The model (docs/cost.md): the order rate and the inactivity sweep set the event rate at peak;
measured events per second per process (``benchmarks/results``) set how many CDC, worker and
gateway processes that takes; processes set EKS nodes; customers set Redis memory; the rest
is a fixed floor (EKS, MSK, NAT, load balancer, secrets, key). Prices come from
``aws_prices.json`` with their date and source.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from churnwire.deploy.benchmarks import RESULTS, Found, read_measurement

SECONDS_PER_DAY = 86_400
TARGET_PER_CUSTOMER = 0.10
# Measured on CDNOW (23,570 customers) and written in docs/state.md; used when no stream
# benchmark result carries a figure.
DOCUMENTED_BYTES_PER_CUSTOMER = 468.0
# Redis needs room beyond the data set: fragmentation, replication buffers, growth.
REDIS_HEADROOM = 2.0
# One Python process uses about one core: the benchmarks measure one process, so each one is
# priced as one vCPU and 1 GiB.
PROCESS_VCPU = 1.0
PROCESS_MEMORY_GIB = 1.0
# Share of a node's CPU and memory left to pods after the kubelet, system pods and daemonsets.
NODE_ALLOCATABLE = 0.8
MIN_NODES = 2
MIN_GATEWAYS = 2
MSK_BROKERS = 3
MSK_VOLUME_GB = 100  # terraform/variables.tf default msk_volume_gb
NAT_GATEWAYS = 3  # one per zone, as terraform/ creates them for prod
RDS_STORAGE_GB = 100


@dataclass(frozen=True)
class Workload:
    """What the shop asks of churnwire."""

    customers: int
    orders_per_day: float
    lookups_per_day: float = 0.0
    events_per_order: float = 1.0
    peak_factor: float = 3.0
    sweep_interval_days: int = 7
    redis_replicas: int = 1
    include_database: bool = False


@dataclass
class Line:
    """One priced item of the estimate."""

    item: str
    quantity: float
    unit: str
    monthly_usd: float


@dataclass
class Estimate:
    """The priced items, their total, and what the figures rest on."""

    lines: list[Line] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def monthly_usd(self) -> float:
        """Total dollars per month."""
        return sum(line.monthly_usd for line in self.lines)

    def per_customer(self, customers: int) -> float:
        """Total dollars per customer per month."""
        return self.monthly_usd / customers


def load_prices(path: Path | None = None) -> dict[str, Any]:
    """The price file (``churnwire/deploy/aws_prices.json`` unless given)."""
    text = path.read_text() if path else files("churnwire.deploy").joinpath(
        "aws_prices.json").read_text()
    prices: dict[str, Any] = json.loads(text)
    return prices


def peak_events_per_second(workload: Workload) -> float:
    """Change events plus sweep re-scores per second at the busiest time of day."""
    orders = workload.orders_per_day * workload.events_per_order
    sweep = workload.customers / workload.sweep_interval_days
    return (orders + sweep) / SECONDS_PER_DAY * workload.peak_factor


def processes_needed(peak_rate: float, measured: Found, minimum: int, estimate: Estimate) -> int:
    """Processes for ``peak_rate`` at the measured rate of one; the minimum when unmeasured."""
    if measured.value is None:
        estimate.warnings.append(f"{measured.name} not measured: {measured.origin}; "
                                 f"priced at the minimum of {minimum} (a lower bound)")
        return minimum
    estimate.sources.append(f"{measured.name} = {measured.value:g} ({measured.origin})")
    return max(minimum, math.ceil(peak_rate / measured.value))


def estimate_cost(
    workload: Workload, prices: dict[str, Any], results: Path = RESULTS
) -> Estimate:
    """Price churnwire for ``workload``."""
    estimate = Estimate()
    price = {name: entry["usd"] for name, entry in prices["prices"].items()}
    capacity, hours = prices["capacity"], prices["hours_per_month"]
    peak = peak_events_per_second(workload)

    cdc = read_measurement("cdc_events_per_second", results)
    processes_needed(peak, cdc, 1, estimate)
    if cdc.value is not None and peak > cdc.value:
        estimate.warnings.append(
            f"peak {peak:.0f} events/s exceeds one CDC process ({cdc.value:g}/s): replication "
            "is one slot, one reader; expect lag at peak or use Kafka Connect"
        )
    worker_rate = read_measurement("worker_events_per_second", results)
    if worker_rate.value is None:
        estimate.warnings.append(f"{worker_rate.origin}; trying the features-only figure")
        worker_rate = read_measurement("stream_events_per_second", results)
    workers = processes_needed(peak, worker_rate, 1, estimate)
    lookups_peak = workload.lookups_per_day / SECONDS_PER_DAY * workload.peak_factor
    gateways = processes_needed(
        lookups_peak, read_measurement("gateway_requests_per_second", results),
        MIN_GATEWAYS, estimate,
    )

    processes = 1 + workers + gateways
    node_vcpu = capacity["ec2_m6i_large_vcpu"] * NODE_ALLOCATABLE
    node_memory = capacity["ec2_m6i_large_memory_gib"] * NODE_ALLOCATABLE
    nodes = max(MIN_NODES, math.ceil(processes * PROCESS_VCPU / node_vcpu),
                math.ceil(processes * PROCESS_MEMORY_GIB / node_memory))
    estimate.lines += [
        Line(f"EKS nodes m6i.large for 1 CDC, {workers} worker(s), {gateways} gateway(s)",
             nodes, "instances", nodes * price["ec2_m6i_large_hour"] * hours),
        Line("EKS control plane", 1, "cluster", price["eks_cluster_hour"] * hours),
        Line("CDC offsets volume (gp3)", 1, "GB", price["ebs_gp3_gb_month"]),
    ]

    bytes_per_customer = read_measurement("redis_bytes_per_customer", results)
    if bytes_per_customer.value is None:
        estimate.warnings.append(f"{bytes_per_customer.origin}; using the figure measured on "
                                 f"CDNOW in docs/state.md ({DOCUMENTED_BYTES_PER_CUSTOMER:g} B)")
        per_customer = DOCUMENTED_BYTES_PER_CUSTOMER
    else:
        per_customer = bytes_per_customer.value
        estimate.sources.append(f"redis_bytes_per_customer = {per_customer:g} "
                                f"({bytes_per_customer.origin})")
    redis_gib = workload.customers * per_customer * REDIS_HEADROOM / 2**30
    shards = max(1, math.ceil(redis_gib / capacity["elasticache_cache_r7g_large_memory_gib"]))
    if shards > 1:
        estimate.warnings.append(f"{redis_gib:.1f} GiB of state needs a larger node type than "
                                 "cache.r7g.large (cluster mode is not supported, docs/scoring.md)")
    redis_nodes = shards * (1 + workload.redis_replicas)
    estimate.lines.append(Line(
        f"ElastiCache cache.r7g.large ({redis_gib:.2f} GiB with headroom)", redis_nodes, "nodes",
        redis_nodes * price["elasticache_cache_r7g_large_hour"] * hours,
    ))

    estimate.lines += [
        Line("MSK brokers kafka.m7g.large", MSK_BROKERS, "brokers",
             MSK_BROKERS * price["msk_kafka_m7g_large_hour"] * hours),
        Line("MSK storage", MSK_BROKERS * MSK_VOLUME_GB, "GB",
             MSK_BROKERS * MSK_VOLUME_GB * price["msk_storage_gb_month"]),
        Line("NAT gateways", NAT_GATEWAYS, "gateways",
             NAT_GATEWAYS * price["nat_gateway_hour"] * hours),
        Line("Application load balancer", 1, "load balancer", price["alb_hour"] * hours),
        Line("Secrets Manager", 2, "secrets", 2 * price["secrets_manager_secret_month"]),
        Line("KMS key", 1, "key", price["kms_key_month"]),
        Line("S3 model registry", 1, "GB", price["s3_standard_gb_month"]),
    ]
    if workload.include_database:
        estimate.lines += [
            Line("RDS PostgreSQL db.m6g.large, Multi-AZ", 2, "instances",
                 2 * price["rds_postgres_db_m6g_large_hour"] * hours),
            Line("RDS storage (gp3)", RDS_STORAGE_GB, "GB",
                 RDS_STORAGE_GB * price["rds_gp3_gb_month"] * 2),
        ]
    return estimate


def render(estimate: Estimate, workload: Workload, prices: dict[str, Any]) -> str:
    """The estimate as a plain-text report."""
    lines = [
        f"churnwire on AWS ({prices['region']}, {prices['pricing']}; prices recorded "
        f"{prices['recorded_on']}: check them, see churnwire/deploy/aws_prices.json)",
        f"{workload.customers:,} customers, {workload.orders_per_day:,.0f} orders/day, "
        f"{workload.lookups_per_day:,.0f} lookups/day, peak {workload.peak_factor:g}x average: "
        f"{peak_events_per_second(workload):.2f} events/s at peak",
        "",
    ]
    for line in estimate.lines:
        lines.append(f"  {line.monthly_usd:>10,.2f} USD/month  {line.item} "
                     f"({line.quantity:g} {line.unit})")
    per_customer = estimate.per_customer(workload.customers)
    verdict = "within" if per_customer <= TARGET_PER_CUSTOMER else "above"
    lines += [
        f"  {estimate.monthly_usd:>10,.2f} USD/month  total",
        "",
        f"{per_customer:.4f} USD per customer per month ({verdict} the "
        f"{TARGET_PER_CUSTOMER:.2f} target)",
    ]
    if not workload.include_database:
        lines.append("The shop's PostgreSQL is not included (--include-database adds RDS).")
    lines += ["", "Measured throughputs:", *(f"  {s}" for s in estimate.sources)]
    if estimate.warnings:
        lines += ["", "Warnings:", *(f"  {w}" for w in estimate.warnings)]
    return "\n".join(lines)
