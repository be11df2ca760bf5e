"""One alert's way to an insight: dedupe, context, retrieval, cache or model, store, publish."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from churnwire.config import InsightSettings
from churnwire.insight_worker.context import ContextGatherer, InsightContext
from churnwire.insight_worker.generation import Generated, InsightGenerator
from churnwire.insight_worker.knowledge import Passage
from churnwire.insight_worker.metrics import InsightMetrics
from churnwire.insight_worker.prompts import DEFAULT_PROMPT, PromptTemplate, load_prompt
from churnwire.insight_worker.publish import InsightPublisher
from churnwire.insight_worker.retrieval import Retriever
from churnwire.insight_worker.store import InsightStore
from churnwire.insight_worker.validation import ModelInsight

log = logging.getLogger(__name__)


def _published_at(alert: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(alert["published_at"]))
    except (KeyError, ValueError):
        return None


def insight_document(
    context: InsightContext, passages: list[Passage], generated: Generated, prompt_version: str,
    model: str, latency: float, cached_from: str | None = None,
) -> dict[str, Any]:
    """The stored (and published) insight of one alert."""
    insight = generated.insight
    return {
        "alert_id": context.alert_id,
        "customer_id": context.customer_id,
        "summary": insight.summary,
        "risk_drivers": insight.risk_drivers,
        "actions": insight.actions,
        "passage_ids": [p.passage_id for p in passages],
        "generator": generated.generator,
        "fallback_reason": generated.fallback_reason,
        "repaired": generated.repaired,
        "cached_from": cached_from,
        "prompt_version": prompt_version,
        "model": model if generated.generator == "model" else None,
        "tokens": {"prompt": generated.prompt_tokens, "completion": generated.completion_tokens,
                   "total": generated.tokens},
        "cost": round(generated.cost, 8),
        "latency_seconds": round(latency, 3),
        "probability": context.probability,
        "risk_band": context.risk_band,
        "drivers_key": context.drivers_key,
        "event_time": context.event_time.isoformat(),
        "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "published": False,
    }


def _from_cache(cached: dict[str, Any]) -> Generated:
    insight = ModelInsight(cached["summary"], cached["risk_drivers"], cached["actions"])
    return Generated(insight, str(cached["generator"]))


class InsightService:
    """Handles alerts; safe to call again with the same alert (one insight per alert id)."""

    def __init__(self, settings: InsightSettings, gatherer: ContextGatherer,
                 retriever: Retriever, generator: InsightGenerator, store: InsightStore,
                 publisher: InsightPublisher, metrics: InsightMetrics) -> None:
        self.settings = settings
        self.gatherer = gatherer
        self.retriever = retriever
        self.generator = generator
        self.store = store
        self.publisher = publisher
        self.metrics = metrics
        self.prompt: PromptTemplate = load_prompt(settings.prompt or DEFAULT_PROMPT)
        self._semaphore = asyncio.Semaphore(settings.concurrency)

    async def _finish_publication(self, document: dict[str, Any]) -> None:
        await self.publisher.publish(document)
        await self.store.mark_published(document["alert_id"])

    async def _generate(self, context: InsightContext,
                        passages: list[Passage]) -> tuple[Generated, str | None]:
        if self.settings.cache_hours > 0:
            since = datetime.now(UTC) - timedelta(hours=self.settings.cache_hours)
            cached = await self.store.reusable(context.customer_id, context.drivers_key,
                                               self.prompt.version, since)
            if cached is not None:
                self.metrics.cache_hits.inc()
                return _from_cache(cached), str(cached["alert_id"])
        return await self.generator.generate(context, passages, self.prompt), None

    async def handle(self, alert: dict[str, Any]) -> str:
        """Process one alert message; return what happened (for logs and tests)."""
        if alert.get("type") != "churn_risk":
            return "skipped"
        async with self._semaphore:
            return await self._handle(alert)

    async def _handle(self, alert: dict[str, Any]) -> str:
        alert_id = str(alert["alert_id"])
        existing = await self.store.find(alert_id)
        if existing is not None:
            self.metrics.duplicates.inc()
            if not existing.get("published"):
                await self._finish_publication(existing)
            return "duplicate"
        started = time.monotonic()
        context = await self.gatherer.gather(alert)
        passages = await self.retriever.search(context.retrieval_query())
        self.metrics.retrieval_seconds.observe(self.retriever.last_seconds)
        generated, cached_from = await self._generate(context, passages)
        published_at = _published_at(alert)
        latency = (datetime.now(UTC) - published_at).total_seconds() if published_at else (
            time.monotonic() - started)
        document = insight_document(context, passages, generated, self.prompt.version,
                                    self.settings.llm_model, latency, cached_from)
        if not await self.store.insert(document):
            self.metrics.duplicates.inc()
            return "duplicate"
        self.metrics.insights.labels(generated.generator).inc()
        self.metrics.seconds.observe(max(latency, 0.0))
        await self._finish_publication(document)
        log.info("alert %s: %s insight in %.2f s (%d tokens%s)", alert_id, generated.generator,
                 latency, generated.tokens,
                 f", fallback: {generated.fallback_reason}" if generated.fallback_reason else "")
        return generated.generator
