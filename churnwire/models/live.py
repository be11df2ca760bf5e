"""The champion the worker serves, switched when another version is promoted, without a restart.

The worker asks the registry for the active version every few seconds; when it changed, it
loads the new one in a thread. A version the registry refuses (corrupt or unreadable files) is
logged and counted, and the model already serving keeps serving.
"""

from __future__ import annotations

import asyncio
import logging

from churnwire.models import serving_metrics as metrics
from churnwire.models.champion import ChampionModel
from churnwire.models.registry import ModelRegistry, ModelRejected

log = logging.getLogger(__name__)


class LiveChampion:
    """Holds the serving champion; ``refresh`` follows the registry's active version."""

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry
        self.model: ChampionModel | None = None
        self._refused: str | None = None

    async def refresh(self) -> ChampionModel | None:
        """Load the active version if it is not the one serving; return what serves now."""
        loop = asyncio.get_running_loop()
        active = await loop.run_in_executor(None, self._registry.active_version)
        serving = self.model.version if self.model is not None else None
        if active is None or active in (serving, self._refused):
            return self.model
        try:
            model = await loop.run_in_executor(None, self._registry.load, active)
        except ModelRejected as error:
            self._refused = active
            metrics.MODEL_LOAD_FAILURES.inc()
            log.error("model %s refused, still serving %s: %s", active, serving, error)
            return self.model
        self._refused = None
        if serving is not None:
            metrics.MODEL_INFO.remove(serving, "champion")
        metrics.MODEL_INFO.labels(version=model.version, variant="champion").set(1)
        log.info("serving champion %s (was %s)", model.version, serving)
        self.model = model
        return model
