"""``churnwire up``, ``down`` and ``status``: the stack's components in dependency order."""

from __future__ import annotations

import asyncio
import logging
import time

from churnwire.config import Settings
from churnwire.data.schema import apply_schema
from churnwire.embedded.cdc import CdcProcess
from churnwire.embedded.component import Component, ComponentStatus
from churnwire.embedded.gateway import GatewayProcess
from churnwire.embedded.insights import InsightWorker
from churnwire.embedded.kafka import EmbeddedKafka
from churnwire.embedded.llm import EmbeddedLlm
from churnwire.embedded.mongo import EmbeddedMongo
from churnwire.embedded.postgres import EmbeddedPostgres
from churnwire.embedded.process import log_tail
from churnwire.embedded.redis import EmbeddedRedis
from churnwire.embedded.worker import StreamWorker
from churnwire.topics import all_topics, ensure_topics

log = logging.getLogger(__name__)


class ComponentFailed(RuntimeError):
    """A component did not become healthy; the message carries its log tail."""

    def __init__(self, component: Component, status: ComponentStatus) -> None:
        tail = log_tail(component.log_file)
        super().__init__(
            f"{component.name} did not become healthy ({status.detail or 'no detail'}).\n"
            f"Last lines of {component.log_file}:\n{tail}"
        )
        self.component = component.name


class Stack:
    """The services churnwire runs on, embedded unless configured by URL."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.postgres = EmbeddedPostgres(settings)
        self.redis = EmbeddedRedis(settings)
        self.kafka = EmbeddedKafka(settings)
        self.cdc = CdcProcess(settings)
        self.worker = StreamWorker(settings)
        self.gateway = GatewayProcess(settings)
        self.llm = EmbeddedLlm(settings)
        self.mongo = EmbeddedMongo(settings)
        self.insights = InsightWorker(settings)

    @property
    def insight_services(self) -> list[Component]:
        """The model server and insight store, when the insight worker is on."""
        return [self.llm, self.mongo] if self.settings.insight.enabled else []

    @property
    def components(self) -> list[Component]:
        """Components in start order; ``down`` stops them in reverse."""
        insight_worker = [self.insights] if self.settings.insight.enabled else []
        return [self.postgres, self.redis, self.kafka, *self.insight_services, self.cdc,
                self.worker, self.gateway, *insight_worker]

    def up(self, timeout: float = 120.0) -> dict[str, ComponentStatus]:
        """Start what is missing, prepare schema and topics, wait until all are healthy."""
        (self.settings.home / "logs").mkdir(parents=True, exist_ok=True)
        services: list[Component] = [self.postgres, self.redis, self.kafka,
                                     *self.insight_services]
        for component in services:
            component.start()
            self.wait_healthy(component, timeout)
        asyncio.run(apply_schema(self.settings.postgres_url))
        ensure_topics(self.settings, all_topics(self.settings))
        processes: list[Component] = [self.cdc, self.worker, self.gateway]
        if self.settings.insight.enabled:
            from churnwire.insight_worker.knowledge import ensure_knowledge_base

            ensure_knowledge_base(self.settings)
            processes.append(self.insights)
        for component in processes:
            component.start()
            self.wait_healthy(component, timeout)
        return self.status()

    def down(self) -> list[str]:
        """Stop every embedded component churnwire started; return the names stopped."""
        stopped = []
        for component in reversed(self.components):
            if not component.external:
                component.stop()
                stopped.append(component.name)
        return stopped

    def status(self) -> dict[str, ComponentStatus]:
        """Probe every component."""
        return {component.name: component.status() for component in self.components}

    def wait_healthy(self, component: Component, timeout: float) -> ComponentStatus:
        """Poll until ``component`` is healthy; raise ComponentFailed with its log tail if not."""
        deadline = time.monotonic() + timeout
        while True:
            status = component.status()
            if status.healthy:
                log.info("%s healthy at %s", component.name, status.url)
                return status
            process_gone = not component.external and status.pid is None
            if time.monotonic() > deadline or process_gone:
                raise ComponentFailed(component, status)
            time.sleep(0.5)
