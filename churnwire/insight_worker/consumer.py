"""``churnwire insights``: consume ``churn-alerts`` as a consumer group and handle each alert.

Offsets are committed only after every alert of a batch has its insight stored and published,
so a crash re-delivers, and the unique alert id makes re-delivery harmless. A new group starts
at the end of the topic (a worker added to a running shop does not work through old alerts);
its first positions are committed at once so that a restart resumes from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import start_http_server

from churnwire.config import Settings
from churnwire.embedded.insights import liveness_file
from churnwire.insight_worker.context import ContextGatherer
from churnwire.insight_worker.generation import InsightGenerator
from churnwire.insight_worker.limits import Budget
from churnwire.insight_worker.metrics import InsightMetrics
from churnwire.insight_worker.prompts import DEFAULT_PROMPT, load_prompt
from churnwire.insight_worker.publish import InsightPublisher
from churnwire.insight_worker.retrieval import Retriever
from churnwire.insight_worker.service import InsightService
from churnwire.insight_worker.store import InsightStore, mongo_client
from churnwire.kafka_client import aiokafka_config
from churnwire.topics import CHURN_ALERTS

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 30.0


def decode_alert(raw: bytes | None) -> dict[str, Any] | None:
    """The alert of a message value, None when it is not a usable alert."""
    try:
        alert = json.loads(raw or b"")
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(alert, dict) or not {"alert_id", "customer_id", "type"} <= set(alert):
        return None
    return alert


async def _heartbeat(settings: Settings, ready: asyncio.Event) -> None:
    path = liveness_file(settings.home, settings.insight.group)
    path.parent.mkdir(parents=True, exist_ok=True)
    await ready.wait()
    while True:
        path.touch()
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def _handle_until_done(service: InsightService, alert: dict[str, Any],
                             stopping: asyncio.Event) -> None:
    """Handle one alert, retrying outages of Redis, PostgreSQL, MongoDB or Kafka with backoff."""
    delay = RETRY_SECONDS
    while True:
        try:
            await service.handle(alert)
            return
        except Exception as error:
            if stopping.is_set():
                raise
            log.warning("alert %s not handled (%s: %s); retrying in %.0f s",
                        alert.get("alert_id"), type(error).__name__, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)


async def _pin_start(consumer: AIOKafkaConsumer) -> None:
    """Resolve and commit the group's starting positions, so that restarts resume there."""
    # The group coordinator assigns partitions in the background; fetching here would move
    # the positions past records that nobody handles.
    while not consumer.assignment():
        await asyncio.sleep(0.1)
    positions = {tp: await consumer.position(tp) for tp in consumer.assignment()}
    await consumer.commit({tp: offset for tp, offset in positions.items()})


class InsightRunner:
    """Owns the worker's clients; ``run`` consumes until stopped."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = InsightMetrics()
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()

    async def _service(self) -> InsightService:
        insight = self.settings.insight
        self.redis = aioredis.Redis.from_url(self.settings.redis_url, decode_responses=True)
        self.pool = await asyncpg.create_pool(self.settings.postgres_url, min_size=1, max_size=4)
        self.mongo = mongo_client(insight.mongo_url)
        store = InsightStore(self.mongo, insight.mongo_database)
        await store.ensure_indexes()
        self.publisher = InsightPublisher(self.settings)
        await self.publisher.start()
        budget = Budget(self.redis, insight.daily_tokens, insight.daily_cost)
        self.metrics.budget_remaining.set(await budget.remaining_tokens())
        self.retriever = Retriever(self.settings)
        generator = InsightGenerator(insight, budget, self.metrics)
        if not insight.llm_external and await budget.allows_call():
            # Only the local server: a hosted model needs no warm-up and would bill for one.
            await generator.client.warm_up(
                load_prompt(insight.prompt or DEFAULT_PROMPT).system)
        return InsightService(
            insight, ContextGatherer(self.redis, self.pool, self.settings.clock), self.retriever,
            generator, store, self.publisher, self.metrics,
        )

    async def _consume(self, service: InsightService) -> None:
        consumer = AIOKafkaConsumer(
            CHURN_ALERTS, **aiokafka_config(self.settings), group_id=self.settings.insight.group,
            enable_auto_commit=False, auto_offset_reset="latest",
            max_poll_interval_ms=600_000,
        )
        await consumer.start()
        try:
            await _pin_start(consumer)
            self.ready.set()
            log.info("insight worker consuming %s as group %s", CHURN_ALERTS,
                     self.settings.insight.group)
            while not self.stopping.is_set():
                batches = await consumer.getmany(
                    timeout_ms=500, max_records=4 * self.settings.insight.concurrency
                )
                await self._handle_batches(service, batches)
                if batches:
                    await consumer.commit()
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _handle_batches(self, service: InsightService,
                              batches: dict[TopicPartition, list[Any]]) -> None:
        alerts = []
        for messages in batches.values():
            for message in messages:
                alert = decode_alert(message.value)
                if alert is None:
                    self.metrics.failures.labels("undecodable_alert").inc()
                    log.warning("skipping an undecodable message at %s/%d offset %d",
                                message.topic, message.partition, message.offset)
                    continue
                alerts.append(alert)
        await asyncio.gather(*(_handle_until_done(service, a, self.stopping) for a in alerts))

    async def run(self) -> None:
        """Serve metrics, connect, consume until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        start_http_server(self.settings.insight.metrics_port, addr="127.0.0.1",
                          registry=self.metrics.registry)
        heartbeat = asyncio.create_task(_heartbeat(self.settings, self.ready))
        service = await self._service()
        try:
            await self._consume(service)
        finally:
            heartbeat.cancel()
            await self.publisher.stop()
            await self.pool.close()
            await self.redis.aclose()
            self.mongo.close()
            self.retriever.close()
            log.info("insight worker stopped")


def run_insights(settings: Settings) -> int:
    """Run the insight worker in the foreground; return the exit code."""
    asyncio.run(InsightRunner(settings).run())
    return 0
