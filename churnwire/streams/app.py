"""The Faust worker: one agent per source topic, each folding batches into Redis state.

After each batch the touched customers are scored and their alerts published; timers run the
inactivity sweep, online learning and the switch to a newly promoted model
(:mod:`churnwire.streams.pipeline`).

Offsets are committed only after a batch is applied (``take_events`` acks after the loop
body), so a crash redelivers and the position check in the state writer makes that harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import faust
from redis.exceptions import RedisError

from churnwire.config import Settings
from churnwire.state.layout import WATERMARK
from churnwire.streams import metrics
from churnwire.streams.dead_letter import DeadLetter, SourceMessage
from churnwire.streams.lag import consumer_lag
from churnwire.streams.pipeline import FeaturePipeline
from churnwire.topics import CHURN_ALERTS, DEAD_LETTER, WEB_EVENTS

log = logging.getLogger(__name__)

BATCH_WITHIN_SECONDS = 0.05
LIVENESS_SECONDS = 2.0
RETRY_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0)
SWEEP_SECONDS = 1.0
LEARN_SECONDS = 1.0
MODEL_REFRESH_SECONDS = 2.0


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
    state: dict[str, FeaturePipeline] = {}

    async def send_alert(key: bytes, value: bytes) -> None:
        await app.producer.send_and_wait(CHURN_ALERTS, key, value, None, None, None)

    def pipeline() -> FeaturePipeline:
        if "pipeline" not in state:
            state["pipeline"] = FeaturePipeline(
                settings, worker_name, FaustDeadLetters(app), send_alert,
                scoring=settings.scoring,
            )
        return state["pipeline"]

    async def consume(stream: Any) -> None:
        async for events in stream.take_events(settings.worker_batch_size, BATCH_WITHIN_SECONDS):
            batch = [_source_message(event) for event in events]
            await _retry_redis(partial(pipeline().handle, batch), f"{len(batch)} events")

    for topic_name in source_topics:
        topic = app.topic(
            topic_name, key_type=bytes, value_type=bytes,
            key_serializer="raw", value_serializer="raw",
        )
        app.agent(topic, name=f"churnwire.fold.{topic_name}")(consume)

    @app.timer(LIVENESS_SECONDS)
    async def report_liveness() -> None:
        liveness_path(settings, worker_name).touch()

    @app.timer(SWEEP_SECONDS)
    async def sweep_inactive_customers() -> None:
        await _retry_redis(pipeline().sweep, "the inactivity sweep", attempts=1)

    @app.timer(LEARN_SECONDS)
    async def learn_outcomes() -> None:
        await _retry_redis(pipeline().learn, "learning outcomes", attempts=1)

    @app.timer(MODEL_REFRESH_SECONDS)
    async def follow_active_model() -> None:
        await pipeline().refresh_model()

    @app.timer(5.0)
    async def export_lag_and_watermark() -> None:
        lag = await asyncio.get_running_loop().run_in_executor(
            None, consumer_lag, settings, settings.worker_group, source_topics
        )
        for topic_name, messages in lag.items():
            metrics.CONSUMER_LAG.labels(topic=topic_name).set(messages)
        if "pipeline" in state:
            watermark = await state["pipeline"].client.get(WATERMARK)
            if watermark:
                metrics.WATERMARK_SECONDS.set(int(watermark) / 1e6)
            await _retry_redis(state["pipeline"].export_risk_bands, "risk bands", attempts=1)

    return app


async def _retry_redis(
    step: Callable[[], Awaitable[object]], what: str, attempts: int | None = None
) -> None:
    """Run a step, waiting out Redis outages; a batch stays unacknowledged meanwhile.

    With ``attempts`` set (the timers), give up after that many failures: the next tick
    tries again.
    """
    attempt = 0
    while True:
        try:
            await step()
            return
        except (RedisError, OSError) as error:
            attempt += 1
            if attempts is not None and attempt >= attempts:
                log.warning("%s failed (%s); next tick tries again", what, error)
                return
            delay = RETRY_BACKOFF_SECONDS[min(attempt - 1, len(RETRY_BACKOFF_SECONDS) - 1)]
            log.warning("%s failed (%s); retrying in %.1f s", what, error, delay)
            await asyncio.sleep(delay)


def run_worker(settings: Settings, worker_name: str) -> int:
    """Run the worker until SIGTERM; metrics on the configured port."""
    from prometheus_client import start_http_server

    (settings.home / "worker-data").mkdir(parents=True, exist_ok=True)
    liveness_path(settings, worker_name).parent.mkdir(parents=True, exist_ok=True)
    liveness_path(settings, worker_name).unlink(missing_ok=True)
    start_http_server(settings.worker_metrics_port, addr=settings.metrics_host)
    app = create_app(settings, worker_name)
    worker = faust.Worker(app, loglevel="INFO", quiet=True)
    worker.execute_from_commandline()
    return 0
