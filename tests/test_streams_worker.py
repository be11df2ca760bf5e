"""The stream worker end to end: Postgres -> Debezium -> Kafka -> Faust -> Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date

import pytest
from confluent_kafka import Producer

from churnwire.embedded.process import read_pid, wait_for_exit
from churnwire.embedded.stack import Stack
from churnwire.state.features import FEATURE_NAMES
from churnwire.state.offline import build_offline
from churnwire.state.parity import compare_feature_rows
from churnwire.state.snapshot import snapshot_online
from churnwire.timeutil import end_of_day_micros
from churnwire.topics import DEAD_LETTER
from tests.conftest import SECOND_WORKER_METRICS_PORT
from tests.kafka_reader import TopicReader
from tests.pg import execute, fetch, insert_orders
from tests.worker_helpers import applied_events, drain

NOW_AS_OF = end_of_day_micros(date(2100, 1, 1))


def only(rows: list[dict], prefix: str) -> list[dict]:  # type: ignore[type-arg]
    return [row for row in rows if row["customer_id"].startswith(prefix)]


def features_of(stack: Stack, customer_id: str) -> dict | None:  # type: ignore[type-arg]
    rows = only(snapshot_online(stack.settings.redis_url, NOW_AS_OF), customer_id)
    return rows[0] if rows else None


def test_update_and_delete_correct_the_features(stack: Stack, unique: str) -> None:
    url = stack.settings.postgres_url
    insert_orders(url, unique, [f"{unique}-a", f"{unique}-b"], amount="10.00")
    execute(url, "UPDATE orders SET amount = 25.50 WHERE order_id = $1", f"{unique}-a")
    execute(url, "DELETE FROM orders WHERE order_id = $1", f"{unique}-b")
    drain(stack.settings)

    features = features_of(stack, unique)
    assert features is not None
    assert features["orders_lifetime"] == 1 and features["spend_lifetime"] == 25.5

    execute(url, "DELETE FROM customers WHERE customer_id = $1", unique)
    drain(stack.settings)
    assert features_of(stack, unique) is None, "a deleted customer's state is purged"


@pytest.mark.parametrize("cutoff", [date(1997, 3, 31), date(1997, 9, 30)])
def test_online_snapshot_equals_offline_build_on_cdnow(
    stack: Stack, cutoff: date, tmp_path: object
) -> None:
    from churnwire.data.cdnow import load_cdnow

    settings = stack.settings
    load_cdnow(settings.postgres_url, until=cutoff)
    drain(settings)
    as_of = end_of_day_micros(cutoff)

    built = only(build_offline(settings.postgres_url, as_of), "cdnow-")
    online = only(snapshot_online(settings.redis_url, as_of), "cdnow-")
    customers = fetch(
        settings.postgres_url,
        "SELECT count(DISTINCT customer_id) FROM orders WHERE order_id LIKE 'cdnow-%' "
        "AND created_at <= $1::date + interval '1 day' - interval '1 microsecond'",
        cutoff,
    )[0][0]
    assert len(built) == customers > 1000
    assert compare_feature_rows(built, online) == []
    assert sum(row["orders_lifetime"] for row in online) == fetch(
        settings.postgres_url,
        "SELECT count(*) FROM orders WHERE order_id LIKE 'cdnow-%' "
        "AND created_at <= $1::date + interval '1 day' - interval '1 microsecond'",
        cutoff,
    )[0][0]


def test_feature_commands_write_parquet_with_one_schema(stack: Stack, tmp_path: object) -> None:
    import pyarrow.parquet as pq

    paths = {}
    for action in ("build", "snapshot"):
        paths[action] = f"{tmp_path}/{action}.parquet"
        subprocess.run(
            [sys.executable, "-m", "churnwire", "features", action, "--as-of", "1997-03-31",
             "--out", paths[action]],
            check=True, capture_output=True, timeout=300,
        )
    built, online = pq.read_table(paths["build"]), pq.read_table(paths["snapshot"])
    assert built.schema == online.schema
    assert built.column_names == ["customer_id", *FEATURE_NAMES]


def _produce(stack: Stack, messages: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap})
    for key, value in messages:
        producer.produce(stack.settings.orders_topic, key=key, value=value, partition=0)
    assert producer.flush(30) == 0


def _envelope(order_id: str, customer_id: str, lsn: int, **extra: object) -> bytes:
    after = {"order_id": order_id, "customer_id": customer_id, "amount": "9.99", "items": 1,
             "status": "completed", "created_at": "2026-01-02T03:04:05Z", **extra}
    return json.dumps({"op": "c", "before": None, "after": after,
                       "source": {"lsn": lsn}, "ts_ms": 0}).encode()


def test_bad_input_goes_to_the_dead_letter_topic_and_the_partition_moves_on(
    stack: Stack, unique: str
) -> None:
    dead_letters = TopicReader(stack.settings, [DEAD_LETTER])
    key = json.dumps({"order_id": f"{unique}-bad"}).encode()
    bad = [
        (key, b"{not json"),
        (key, json.dumps({"op": "x", "source": {"lsn": 1}}).encode()),
        (key, _envelope(f"{unique}-bad", unique, 5).replace(b'"amount": "9.99", ', b"")),
        (key, _envelope(f"{unique}-bad", unique, 5).replace(b'"9.99"', b'"nine"')),
    ]
    drifted = (key, _envelope(f"{unique}-drift", unique, 7, coupon="XMAS"))
    good = (key, _envelope(f"{unique}-good", unique, 9))
    _produce(stack, [*bad, drifted, good])

    letters = dead_letters.collect(lambda rs: len(rs) >= 4, timeout=60)
    dead_letters.close()
    reasons = [letter.value["reason"] for letter in letters]
    assert any("undecodable JSON" in r for r in reasons)
    assert any("unknown operation 'x'" in r for r in reasons)
    assert any("missing field 'amount'" in r for r in reasons)
    assert any("not a number" in r for r in reasons)
    assert {letter.value["topic"] for letter in letters} == {stack.settings.orders_topic}
    assert all(letter.value["partition"] == 0 and letter.value["offset"] >= 0
               for letter in letters)
    assert letters[0].headers["churnwire.reason"].decode() == reasons[0]

    drain(stack.settings)
    # No customers row exists for these orders, so read the orders hash directly.
    import redis

    from churnwire.state.layout import decode_orders, orders_key

    client = redis.Redis.from_url(stack.settings.redis_url, decode_responses=True)
    orders = {f.order_id for f in decode_orders(client.hgetall(orders_key(unique)))}
    client.close()
    assert orders == {f"{unique}-drift", f"{unique}-good"}


def test_a_redelivered_event_is_applied_once(stack: Stack, unique: str) -> None:
    port = stack.settings.worker_metrics_port
    topic = stack.settings.orders_topic
    duplicates_before = applied_events(port, topic, "duplicate")
    event = (json.dumps({"order_id": f"{unique}-r"}).encode(), _envelope(f"{unique}-r", unique, 11))
    _produce(stack, [event, event, event])
    deadline = time.monotonic() + 60
    while applied_events(port, topic, "duplicate") < duplicates_before + 2:
        assert time.monotonic() < deadline, "the worker never saw the redeliveries"
        time.sleep(0.5)
    import redis

    from churnwire.state.layout import orders_key

    client = redis.Redis.from_url(stack.settings.redis_url, decode_responses=True)
    assert client.hlen(orders_key(unique)) == 1
    client.close()


def test_two_workers_share_partitions_without_lost_updates(stack: Stack, unique: str) -> None:
    env = {**os.environ, "CHURNWIRE_WORKER_METRICS_PORT": str(SECOND_WORKER_METRICS_PORT)}
    second = subprocess.Popen(
        [sys.executable, "-m", "churnwire", "worker", "--name", "worker2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(8)  # let the group rebalance onto both workers
        customers = [f"{unique}-c{n}" for n in range(10)]
        for batch in range(20):
            for customer_id in customers:
                insert_orders(stack.settings.postgres_url, customer_id,
                              [f"{customer_id}-{batch}-{n}" for n in range(10)], amount="1.25")
        drain(stack.settings)
        topic = stack.settings.orders_topic
        first_count = applied_events(stack.settings.worker_metrics_port, topic)
        second_count = applied_events(SECOND_WORKER_METRICS_PORT, topic)
        assert first_count > 0 and second_count > 0, "both workers applied order events"
        online = only(snapshot_online(stack.settings.redis_url, NOW_AS_OF), f"{unique}-c")
        built = only(build_offline(stack.settings.postgres_url, NOW_AS_OF), f"{unique}-c")
        assert len(online) == 10
        assert all(row["orders_lifetime"] == 200 and row["spend_lifetime"] == 250.0
                   for row in online)
        assert compare_feature_rows(built, online) == []
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)


def test_a_worker_killed_mid_stream_recovers_to_the_offline_truth(stack: Stack) -> None:
    from churnwire.data.synthetic import load_synthetic

    seed = 9000 + int(time.time()) % 1000
    settings = stack.settings
    loader = threading.Thread(
        target=load_synthetic,
        args=(settings.postgres_url,),
        kwargs={"customers": 1000, "orders": 15000, "seed": seed},
    )
    applied_before = applied_events(settings.worker_metrics_port, settings.orders_topic)
    loader.start()
    deadline = time.monotonic() + 120
    while applied_events(settings.worker_metrics_port, settings.orders_topic) < (
        applied_before + 2000
    ):
        assert time.monotonic() < deadline, "the worker did not start on the synthetic orders"
        time.sleep(0.2)
    pid = read_pid(stack.worker.pid_file)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid, 10)
    loader.join()
    stack.worker.start()
    stack.wait_healthy(stack.worker, timeout=120)
    drain(settings)

    prefix = f"syn{seed}-"
    online = only(snapshot_online(settings.redis_url, NOW_AS_OF), prefix)
    built = only(build_offline(settings.postgres_url, NOW_AS_OF), prefix)
    assert len(built) == 1000
    assert sum(row["orders_lifetime"] for row in built) == 15000
    assert compare_feature_rows(built, online) == []
