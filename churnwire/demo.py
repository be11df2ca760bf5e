"""``churnwire demo`` (``make demo``): the whole pipeline on the embedded stack, narrated.

Brings the stack up, loads the real CDNOW log up to 1997-09-30 into PostgreSQL, shows the
change events reaching Kafka and the worker folding them into Redis, trains a churn model on
that history, then replays the rest of the log in event time so the worker scores customers
and raises alerts, gives a ready-to-run ``curl`` for a high-risk customer, and ends with the
first retention insights the insight worker wrote, each action with the playbook passage it
follows. The stack keeps running afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date

import asyncpg
import redis

from churnwire.config import Settings
from churnwire.data.cdnow import load_cdnow
from churnwire.embedded.stack import Stack
from churnwire.streams.idle import wait_idle
from churnwire.streams.pipeline import sweep_backlog
from churnwire.topics import topic_message_counts

HISTORY_UNTIL = date(1997, 9, 30)
TRAINING_CUTOFF = date(1997, 6, 30)
HORIZON_DAYS = 90


def _heading(text: str) -> None:
    print(f"\n== {text}")


async def _table_counts(postgres_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(postgres_url)
    try:
        return {
            table: await connection.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("customers", "orders")
        }
    finally:
        await connection.close()


def _show_change_events(settings: Settings, timeout: float = 300.0) -> None:
    """Print the number of change events per topic until Kafka holds every loaded row."""
    rows = asyncio.run(_table_counts(settings.postgres_url))
    topics = {settings.customers_topic: rows["customers"], settings.orders_topic: rows["orders"]}
    deadline = time.monotonic() + timeout
    while True:
        counts = topic_message_counts(settings, list(topics))
        line = ", ".join(f"{topic}: {counts[topic]:,} events" for topic in topics)
        print(f"  {line}")
        if all(counts[topic] >= rows_in_table for topic, rows_in_table in topics.items()):
            return
        if time.monotonic() > deadline:
            print("  (CDC is still catching up; continuing)")
            return
        time.sleep(2.0)


def _wait_caught_up(settings: Settings, timeout: float = 900.0) -> bool:
    """Wait until CDC and the worker are idle and the inactivity sweep has caught up."""
    idle = wait_idle(settings, timeout=timeout)
    print(f"  stream {'caught up' if idle.idle else 'still behind: ' + idle.waiting_for}"
          f" after {idle.seconds:.1f} s")
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + timeout
        while (backlog := sweep_backlog(client)) and time.monotonic() < deadline:
            time.sleep(1.0)
        print(f"  inactivity sweep: {backlog or 0} customers still due")
    finally:
        client.close()
    return idle.idle


def _train_or_reuse(settings: Settings) -> str:
    """Train a model on the loaded history, unless one is active already (a re-run)."""
    from churnwire.models.registry import ModelRegistry
    from churnwire.models.training import train_model

    registry = ModelRegistry(settings.model_dir)
    version = registry.active_version()
    if version is not None:
        print(f"  using the active model {version} (remove {settings.model_dir} to retrain)")
        card = registry.card(version)
    else:
        result = train_model(settings, [TRAINING_CUTOFF], horizon_days=HORIZON_DAYS)
        version, card = result.version, result.card
        print(f"  trained {version} in {card['training_seconds']} s -> {result.path}")
    model, baselines = card["metrics"]["model"], card["metrics"]["baselines"]
    print(f"  held-out customers: {card['data']['test_customers']:,}, "
          f"churn rate {model['churn_rate']:.3f}")
    print(f"  {'':<22} {'AUC':>7} {'PR-AUC':>7} {'acc@0.5':>8} {'Brier':>7}")
    for name, metrics in {"model": model, **baselines}.items():
        print(f"  {name:<22} {_num(metrics.get('auc')):>7} {_num(metrics.get('pr_auc')):>7} "
              f"{_num(metrics.get('accuracy_at_0_5')):>8} {_num(metrics.get('brier')):>7}")
    print(f"  at the alert threshold {model['threshold']}: precision "
          f"{_num(model['precision_at_threshold'])}, recall {_num(model['recall_at_threshold'])}"
          f"; model card: {settings.model_dir / version / 'card.md'}")
    return version


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def _show_alerts(settings: Settings) -> str | None:
    """Count the alerts raised and print a few; return a high-risk customer's id."""
    from churnwire.state.layout import RECENT_ALERTS

    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        alerts = [json.loads(str(a)) for a in client.zrange(RECENT_ALERTS, 0, -1)]
    finally:
        client.close()
    risks = [a for a in alerts if a["type"] == "churn_risk"]
    recovered = len(alerts) - len(risks)
    print(f"  {len(risks):,} churn_risk and {recovered:,} recovered messages among the newest "
          f"{len(alerts):,} on churn-alerts")
    late = [a for a in risks if a["event_time"] > f"{HISTORY_UNTIL}T23:59:59"]
    for alert in (late or risks)[-3:]:
        reasons = ", ".join(f"{f['feature']}={_shown(f['value'])}"
                            for f in alert["top_features"][:3])
        print(f"  {alert['customer_id']}: p={alert['probability']:.2f} "
              f"(was {_shown(alert['previous_probability'])}) at "
              f"{alert['event_time'][:10]}; top drivers: {reasons}")
    return (late or risks)[-1]["customer_id"] if risks else None


def _shown(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _show_lookup(settings: Settings, customer_id: str) -> None:
    """Create an API key and print a curl for the customer, with the gateway's answer."""
    import urllib.request

    from churnwire.gateway.keys import create_api_key

    key = create_api_key(settings.redis_url, name="demo", scope="read")
    url = f"http://{settings.gateway_host}:{settings.gateway_port}/v1/customers/{customer_id}"
    print(f"  curl -s -H 'Authorization: Bearer {key}' {url}")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        answer = json.loads(reply.read())
    features = answer["features"]
    shown = ("orders_lifetime", "spend_lifetime", "days_since_last_order", "recency_ratio")
    print(f"  -> as of {answer['as_of']}: churn {json.dumps(answer['churn'])}")
    print("     " + ", ".join(f"{name}={_shown(features.get(name))}" for name in shown))


def _show_insights(settings: Settings, count: int = 3, timeout: float = 300.0) -> None:
    """Wait for the insight worker's first insights and print them with their sources."""
    from pymongo import MongoClient

    from churnwire.insight_worker.knowledge import SHIPPED_PLAYBOOKS, read_playbooks

    sections = {p.passage_id: f"{p.title} / {p.section}" for p in read_playbooks(SHIPPED_PLAYBOOKS)}
    client: MongoClient = MongoClient(  # type: ignore[type-arg]
        settings.insight.mongo_url, serverSelectionTimeoutMS=5000)
    collection = client[settings.insight.mongo_database]["insights"]
    try:
        deadline = time.monotonic() + timeout
        while collection.count_documents({}) < count and time.monotonic() < deadline:
            time.sleep(2.0)
        total = collection.count_documents({})
        by_generator = {g: collection.count_documents({"generator": g}) for g in ("model", "rules")}
        print(f"  {total:,} insights stored so far ({by_generator['model']:,} by the model, "
              f"{by_generator['rules']:,} by rules); the worker keeps going in the background")
        for insight in collection.find({}, {"_id": False}).sort("created_at", 1).limit(count):
            _print_insight(insight, sections)
    finally:
        client.close()


def _print_insight(insight: dict, sections: dict[str, str]) -> None:  # type: ignore[type-arg]
    source = (f"model {insight['model']}" if insight["generator"] == "model"
              else f"rules ({insight.get('fallback_reason')})")
    print(f"\n  alert {insight['alert_id']} (p={insight['probability']:.2f}) -> insight by "
          f"{source}, prompt {insight['prompt_version']}, {insight['tokens']['total']} tokens, "
          f"{insight['latency_seconds']:.1f} s after the alert")
    print(f"    summary: {insight['summary']}")
    for driver in insight["risk_drivers"]:
        print(f"    driver:  {driver['feature']}: {driver['explanation']}")
    for action in insight["actions"]:
        where = sections.get(action["passage_id"], action["passage_id"] or "no passage")
        print(f"    action:  [{action['channel']}] {action['action']}")
        print(f"             from playbook passage {action['passage_id']} ({where})")


def run_demo(settings: Settings) -> int:
    """Run the demo; return the process exit code."""
    stack = Stack(settings)
    _heading("1. Starting the embedded stack (PostgreSQL, Redis, Kafka, Debezium CDC, worker, "
             "gateway, local model, insight store and worker)")
    for name, status in stack.up(timeout=180).items():
        print(f"  {name:<9} {'ok' if status.healthy else 'DOWN'}  {status.url}")

    _heading(f"2. Loading the real CDNOW transaction log up to {HISTORY_UNTIL} into PostgreSQL")
    print(f"  {load_cdnow(settings.postgres_url, until=HISTORY_UNTIL).summary()}")

    _heading("3. Change events reaching Kafka through Debezium")
    _show_change_events(settings)

    _heading("4. Waiting for the stream worker to fold every change into Redis")
    caught_up = _wait_caught_up(settings)

    _heading(f"5. Training a churn model at cutoff {TRAINING_CUTOFF} "
             f"({HORIZON_DAYS}-day horizon, 20% of customers held out)")
    _train_or_reuse(settings)
    print("  the worker loads it within seconds and scores every customer")

    _heading(f"6. Replaying the rest of CDNOW ({HISTORY_UNTIL} to 1998-06-30) in event time")
    print(f"  {load_cdnow(settings.postgres_url).summary()}")
    _show_change_events(settings)
    caught_up = _wait_caught_up(settings) and caught_up

    _heading("7. Churn alerts (topic churn-alerts), exactly one per threshold crossing")
    customer_id = _show_alerts(settings)

    if customer_id is not None:
        _heading(f"8. Ask the gateway about {customer_id} (a fresh read-only API key)")
        _show_lookup(settings, customer_id)

    if settings.insight.enabled:
        _heading("9. Retention insights (topic customer-insights, MongoDB), grounded in the "
                 "shipped playbooks")
        _show_insights(settings)

    print("\nThe stack keeps running. 'churnwire status' shows it; 'churnwire down' stops it.")
    return 0 if caught_up else 1
