"""The Faust worker: one agent per source topic, each folding batches into Redis state.

Offsets are committed only after a batch is applied (``take_events`` acks after the loop
body), so a crash redelivers and the position check in the state writer makes that harmless.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import faust
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from churnwire.config import Settings
from churnwire.state.layout import WATERMARK
from churnwire.state.writer import StateWriter
from churnwire.streams import metrics
from churnwire.streams.changes import decode_customer, decode_order
from churnwire.streams.dead_letter import DeadLetter, SourceMessage
from churnwire.streams.lag import consumer_lag
from churnwire.streams.processor import ChangeProcessor
from churnwire.streams.web_events import decode_web_event
from churnwire.topics import DEAD_LETTER, WEB_EVENTS

log = logging.getLogger(__name__)

BATCH_WITHIN_SECONDS = 0.05
LIVENESS_SECONDS = 2.0
RETRY_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0)


class FaustDeadLetters:
    """Dead letters produced through the worker's own Kafka producer, awaited."""

    def __init__(self, app: faust.App) -> None:
        self._app = app

    async def send(self, letter: DeadLetter) -> None:
        """Produce the dead letter and wait for the broker's acknowledgement."""
        await self._app.producer.send_and_wait(
            DEAD_LETTER, letter.source.key, letter.to_json(), None, None, letter.headers()
        )


def _broker_credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    from aiokafka.helpers import create_ssl_context

    context = create_ssl_context() if protocol.endswith("SSL") else None
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


def _source_message(event: Any) -> SourceMessage:
    message = event.message
    return SourceMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
    )


def liveness_path(settings: Settings, worker_name: str) -> Path:
    """A file the running worker touches every few seconds."""
    return settings.home / "run" / f"{worker_name}.alive"


def create_app(settings: Settings, worker_name: str = "worker") -> faust.App:
    """The Faust app of the feature engine, its agents and its timers."""
    app = faust.App(
        settings.worker_group,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=_broker_credentials(settings),
        store="memory://",
        web_enabled=False,
        topic_disable_leader=True,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        # A restarted worker rejoins within seconds instead of faust's default minute.
        broker_session_timeout=10.0,
        broker_rebalance_timeout=10.0,
        # Static membership: a restarted worker takes its own place back at once.
        consumer_group_instance_id=f"{settings.worker_group}-{worker_name}",
        broker_heartbeat_interval=2.0,
        broker_commit_interval=1.0,
        producer_acks=-1,
        datadir=str(settings.home / "worker-data" / worker_name),
    )
    source_topics = [settings.orders_topic, settings.customers_topic, WEB_EVENTS]
    state: dict[str, Any] = {}

    def processor() -> ChangeProcessor:
        if "processor" not in state:
            client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
            state["redis"] = client
            state["processor"] = ChangeProcessor(
                StateWriter(client, settings.state_ttl_days * 86_400),
                FaustDeadLetters(app),
                {
                    settings.orders_topic: decode_order,
                    settings.customers_topic: decode_customer,
                    WEB_EVENTS: decode_web_event,
                },
            )
        processor: ChangeProcessor = state["processor"]
        return processor

    async def consume(stream: Any) -> None:
        async for events in stream.take_events(settings.worker_batch_size, BATCH_WITHIN_SECONDS):
            batch = [_source_message(event) for event in events]
            await _apply_with_retry(processor(), batch)

    for topic_name in source_topics:
        topic = app.topic(
            topic_name, key_type=bytes, value_type=bytes,
            key_serializer="raw", value_serializer="raw",
        )
        app.agent(topic, name=f"churnwire.fold.{topic_name}")(consume)

    @app.timer(LIVENESS_SECONDS)
    async def report_liveness() -> None:
        liveness_path(settings, worker_name).touch()

    @app.timer(5.0)
    async def export_lag_and_watermark() -> None:
        lag = await asyncio.get_running_loop().run_in_executor(
            None, consumer_lag, settings, settings.worker_group, source_topics
        )
        for topic_name, messages in lag.items():
            metrics.CONSUMER_LAG.labels(topic=topic_name).set(messages)
        if "redis" in state:
            watermark = await state["redis"].get(WATERMARK)
            if watermark:
                metrics.WATERMARK_SECONDS.set(int(watermark) / 1e6)

    return app


async def _apply_with_retry(processor: ChangeProcessor, batch: list[SourceMessage]) -> None:
    """Apply a batch, waiting out Redis outages: the batch stays unacknowledged meanwhile."""
    attempt = 0
    while True:
        try:
            await processor.process(batch)
            return
        except (RedisError, OSError) as error:
            delay = RETRY_BACKOFF_SECONDS[min(attempt, len(RETRY_BACKOFF_SECONDS) - 1)]
            log.warning("state update failed (%s); retrying %d events in %.1f s",
                        error, len(batch), delay)
            attempt += 1
            await asyncio.sleep(delay)


def run_worker(settings: Settings, worker_name: str) -> int:
    """Run the worker until SIGTERM; metrics on the configured port."""
    from prometheus_client import start_http_server

    (settings.home / "worker-data").mkdir(parents=True, exist_ok=True)
    liveness_path(settings, worker_name).parent.mkdir(parents=True, exist_ok=True)
    liveness_path(settings, worker_name).unlink(missing_ok=True)
    start_http_server(settings.worker_metrics_port, addr="127.0.0.1")
    app = create_app(settings, worker_name)
    worker = faust.Worker(app, loglevel="INFO", quiet=True)
    worker.execute_from_commandline()
    return 0
