"""Real Debezium CDC: envelopes, snapshot, graceful restart and kill -9 of the CDC process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from churnwire.embedded.process import read_pid
from churnwire.embedded.stack import Stack
from tests.kafka_reader import Record, TopicReader
from tests.pg import execute, insert_orders

pytestmark = pytest.mark.usefixtures("stack")


def _keys(records: list[Record], prefix: str) -> list[str]:
    return [
        r.key["order_id"]
        for r in records
        if r.value is not None and r.key["order_id"].startswith(prefix)
    ]


def test_insert_update_delete_arrive_as_debezium_envelopes(stack: Stack, unique: str) -> None:
    settings = stack.settings
    reader = TopicReader(settings, [settings.orders_topic, settings.customers_topic])
    order_id = f"o-{unique}"
    insert_orders(settings.postgres_url, f"c-{unique}", [order_id], amount="12.50")
    execute(settings.postgres_url, "UPDATE orders SET amount = 13.75 WHERE order_id = $1", order_id)
    execute(settings.postgres_url, "DELETE FROM orders WHERE order_id = $1", order_id)

    mine = lambda rs: [r for r in rs if r.key == {"order_id": order_id}]  # noqa: E731
    records = mine(reader.collect(lambda rs: len(mine(rs)) >= 4))
    reader.close()

    assert [r.op for r in records] == ["c", "u", "d", None]
    assert {r.topic for r in records} == {settings.orders_topic}
    assert len({r.partition for r in records}) == 1, "one key, one partition"
    created, updated, deleted, tombstone = records
    assert created.value["before"] is None
    assert created.value["after"]["amount"] == "12.50", "money arrives as a decimal string"
    assert created.value["after"]["customer_id"] == f"c-{unique}"
    assert updated.value["before"]["amount"] == "12.50", "REPLICA IDENTITY FULL before-image"
    assert updated.value["after"]["amount"] == "13.75"
    assert deleted.value["before"]["order_id"] == order_id
    assert deleted.value["after"] is None
    assert tombstone.value is None
    source = created.value["source"]
    assert source["table"] == "orders" and source["connector"] == "postgresql"
    assert isinstance(source["lsn"], int) and isinstance(created.value["ts_ms"], int)
    assert created.value["source"]["lsn"] < updated.value["source"]["lsn"]


def test_initial_snapshot_reads_existing_rows(stack: Stack, unique: str, tmp_path: Path) -> None:
    settings = stack.settings
    order_ids = [f"snap-{unique}-{n}" for n in range(3)]
    insert_orders(settings.postgres_url, f"snapc-{unique}", order_ids)
    prefix = f"snap{unique}"
    env = {
        **os.environ,
        "CHURNWIRE_HOME": str(tmp_path),
        "CHURNWIRE_TOPIC_PREFIX": prefix,
        "CHURNWIRE_TOPIC_PARTITIONS": "1",
        "CHURNWIRE_CDC_SLOT": f"snap_{unique}",
        "CHURNWIRE_CDC_PUBLICATION": f"snap_{unique}",
        "CHURNWIRE_CDC_METRICS_PORT": str(int(os.environ["CHURNWIRE_CDC_METRICS_PORT"]) + 1),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "churnwire", "cdc"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                reader = TopicReader(settings, [f"{prefix}.public.orders"])
                break
            except KeyError:  # the CDC process creates its topics when it starts
                assert time.monotonic() < deadline, "CDC never created its topics"
                time.sleep(0.5)
        reader.close()
        from confluent_kafka import Consumer

        consumer = Consumer(
            {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"snap-{unique}",
             "auto.offset.reset": "earliest"}
        )
        consumer.subscribe([f"{prefix}.public.orders"])
        seen: dict[str, str] = {}
        while not set(order_ids) <= seen.keys():
            assert time.monotonic() < deadline + 60, f"snapshot incomplete: {sorted(seen)[:5]}"
            for message in consumer.consume(num_messages=5000, timeout=0.5):
                if message.error() or message.value() is None:
                    continue
                key = json.loads(message.key())["order_id"]
                seen[key] = json.loads(message.value())["op"]
        consumer.close()
        assert {seen[order_id] for order_id in order_ids} == {"r"}, "snapshot reads have op r"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        execute(settings.postgres_url, f"SELECT pg_drop_replication_slot('snap_{unique}')")


def test_graceful_restart_resumes_without_loss(stack: Stack, unique: str) -> None:
    settings = stack.settings
    reader = TopicReader(settings, [settings.orders_topic])
    prefix = f"gr-{unique}-"
    insert_orders(settings.postgres_url, f"grc-{unique}", [f"{prefix}before"])
    reader.collect(lambda rs: len(_keys(rs, prefix)) >= 1)

    stack.cdc.stop()
    status = _status_json()
    assert status["cdc"]["healthy"] is False and status["cdc"]["pid"] is None
    assert status["postgres"]["healthy"] is True and status["kafka"]["healthy"] is True

    written_while_down = [f"{prefix}{n}" for n in range(200)]
    insert_orders(settings.postgres_url, f"grc-{unique}", written_while_down)
    stack.cdc.start()
    stack.wait_healthy(stack.cdc, timeout=120)
    expected = {f"{prefix}before", *written_while_down}
    records = reader.collect(lambda rs: expected <= set(_keys(rs, prefix)), timeout=120)
    reader.close()
    counts = Counter(_keys(records, prefix))
    assert set(counts) == expected
    assert max(counts.values()) == 1, "a graceful restart resumes exactly"


def test_kill_9_of_cdc_loses_nothing(
    stack: Stack, unique: str, record_property: pytest.RecordProperty
) -> None:
    settings = stack.settings
    reader = TopicReader(settings, [settings.orders_topic])
    prefix = f"k9-{unique}-"
    batches = [[f"{prefix}{b}-{n}" for n in range(50)] for b in range(40)]

    def write() -> None:
        for batch in batches:
            insert_orders(settings.postgres_url, f"k9c-{unique}", batch)
            time.sleep(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    reader.collect(lambda rs: len(_keys(rs, prefix)) >= 200, timeout=60)
    pid = read_pid(stack.cdc.pid_file)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    writer.join()
    stack.cdc.start()
    stack.wait_healthy(stack.cdc, timeout=120)

    expected = {order_id for batch in batches for order_id in batch}
    records = reader.collect(lambda rs: expected <= set(_keys(rs, prefix)), timeout=120)
    reader.close()
    counts = Counter(_keys(records, prefix))
    duplicates = sum(count - 1 for count in counts.values())
    record_property("duplicates_after_kill_9", duplicates)
    print(f"kill -9: {len(expected)} orders, all delivered, {duplicates} delivered twice")
    assert set(counts) == expected


def _status_json() -> dict:  # type: ignore[type-arg]
    result = subprocess.run(
        [sys.executable, "-m", "churnwire", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, "status exits 3 while a component is down"
    return json.loads(result.stdout)  # type: ignore[no-any-return]
