"""What the worker does with each batch and on each tick, independent of Faust's wiring.

A batch of changes is applied to the state; the customers it touched are then scored at the
clock's current time, and the alerts that scoring raised are published. On its ticks the worker
re-scores customers whose inactivity check is due, teaches the challenger the outcomes that
became known, and follows the registry's active model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import redis.asyncio as aioredis

from churnwire.config import Settings
from churnwire.models import serving_metrics as model_metrics
from churnwire.models.alerts import AlertPolicy
from churnwire.models.live import LiveChampion
from churnwire.models.outcomes import OutcomeLearner
from churnwire.models.registry import ModelRegistry
from churnwire.models.scoring import ScoringStage
from churnwire.state.layout import CUSTOMERS_INDEX, RISK_BANDS, SWEEP_DUE, WATERMARK
from churnwire.state.writer import StateWriter
from churnwire.streams.alert_outbox import AlertPublisher, Send
from churnwire.streams.changes import decode_customer, decode_order
from churnwire.streams.dead_letter import DeadLetterSink, SourceMessage
from churnwire.streams.processor import BatchReport, ChangeProcessor
from churnwire.streams.web_events import decode_web_event
from churnwire.topics import WEB_EVENTS

log = logging.getLogger(__name__)

SWEEP_CHUNK = 1000
# String: the champion version for which every customer was last scheduled for re-scoring.
SCHEDULED_FOR = "cw:champion:scheduled"
SWEEP_BUDGET_SECONDS = 0.5


class FeaturePipeline:
    """State updates, inline scoring, the inactivity sweep and online learning of one worker."""

    def __init__(
        self,
        settings: Settings,
        worker_name: str,
        dead_letters: DeadLetterSink,
        send_alert: Send,
        scoring: bool = True,
    ) -> None:
        self.settings = settings
        self.client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
        self.processor = ChangeProcessor(
            StateWriter(self.client, settings.state_ttl_days * 86_400),
            dead_letters,
            {
                settings.orders_topic: decode_order,
                settings.customers_topic: decode_customer,
                WEB_EVENTS: decode_web_event,
            },
        )
        self.scoring_enabled = scoring
        self.champion = LiveChampion(ModelRegistry(settings.model_dir))
        self.learner = OutcomeLearner(self.client, worker_name, settings.label_horizon_days)
        self.stage = ScoringStage(
            self.client,
            AlertPolicy(settings.alert_threshold, settings.alert_hysteresis),
            worker_name,
            settings.challenger_share,
            settings.sweep_interval_days,
            settings.label_horizon_days,
        )
        self.publisher = AlertPublisher(self.client, settings, worker_name, send_alert)
        self._start_lock = asyncio.Lock()
        self._started = False

    async def start(self) -> None:
        """Restore the challenger, load the active champion and publish what was left queued."""
        async with self._start_lock:
            if self._started:
                return
            await self.learner.restore()
            await self.refresh_model()
            await self.publisher.publish()
            self._started = True

    async def handle(self, batch: list[SourceMessage]) -> BatchReport:
        """Apply one batch, then score the customers it touched and publish their alerts."""
        await self.start()
        report = await self.processor.process(batch)
        await self.score(report.outcome.customers)
        return report

    async def score(self, customer_ids: Iterable[str]) -> int:
        """Score customers at the current time; returns how many were scored."""
        model = self.champion.model
        if not self.scoring_enabled or model is None:
            return 0
        customers = list(customer_ids)
        as_of = await self.now()
        if not customers or as_of is None:
            return 0
        report = await self.stage.score(customers, as_of, model, self.learner.challenger)
        if report.alerts:
            await self.publisher.publish()
        return report.scored

    async def now(self) -> int | None:
        """The clock: the watermark in event-time mode, else the wall clock (epoch micros)."""
        if self.settings.clock == "wall":
            return int(time.time() * 1_000_000)
        watermark = await self.client.get(WATERMARK)
        return int(watermark) if watermark else None

    async def sweep(self) -> int:
        """Re-score customers whose inactivity check is due, within a time budget."""
        await self.start()
        as_of = await self.now()
        if as_of is None or self.champion.model is None:
            return 0
        deadline = time.monotonic() + SWEEP_BUDGET_SECONDS
        rescored = 0
        while time.monotonic() < deadline:
            due: list[Any] = await self.client.zrangebyscore(
                SWEEP_DUE, "-inf", as_of, start=0, num=SWEEP_CHUNK
            )
            if not due:
                break
            rescored += await self.score(due)
            if len(due) < SWEEP_CHUNK:
                break
        model_metrics.SWEEP_RESCORED.inc(rescored)
        model_metrics.SWEEP_DUE.set(await self.client.zcount(SWEEP_DUE, "-inf", as_of))
        return rescored

    async def learn(self) -> int:
        """Teach the challenger the outcomes due by now."""
        await self.start()
        as_of = await self.now()
        if as_of is None:
            return 0
        return (await self.learner.step(as_of)).learnt

    async def export_risk_bands(self) -> None:
        """Copy the shop-wide count of customers per segment and risk band into the gauge."""
        for cell, count in (await self.client.hgetall(RISK_BANDS)).items():
            segment, _, band = str(cell).rpartition("|")
            model_metrics.CUSTOMERS_AT_RISK.labels(segment=segment, risk_band=band).set(
                int(count)
            )

    async def refresh_model(self) -> None:
        """Follow the registry's active version; a new champion re-scores every customer."""
        if not self.scoring_enabled:
            return
        model = await self.champion.refresh()
        if model is None:
            return
        # The first worker to serve a new version schedules everyone; restarts do not.
        previous = await self.client.getset(SCHEDULED_FOR, model.version)
        if previous != model.version:
            await self._schedule_everyone()

    async def _schedule_everyone(self) -> None:
        """Make every known customer due for the sweep, so the new model scores them all."""
        # Limitation: O(customers) once per promotion; fine for millions, until a shop needs
        # a staged rollout, which would score by segment of the id space instead.
        scheduled = 0
        async for chunk in _chunks(self.client.sscan_iter(CUSTOMERS_INDEX, count=SWEEP_CHUNK)):
            await self.client.zadd(SWEEP_DUE, dict.fromkeys(chunk, 0))
            scheduled += len(chunk)
        log.info("new champion: %d customers scheduled for re-scoring", scheduled)


def sweep_backlog(client: Any) -> int | None:
    """Customers whose inactivity check is due at the watermark (None before any order).

    ``client`` is a synchronous ``redis.Redis``; zero means the sweep has caught up.
    """
    watermark = client.get(WATERMARK)
    if watermark is None:
        return None
    return int(client.zcount(SWEEP_DUE, "-inf", int(watermark)))


async def _chunks(items: AsyncIterator[str], size: int = SWEEP_CHUNK) -> AsyncIterator[list[str]]:
    chunk: list[str] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
