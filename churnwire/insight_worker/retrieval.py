"""Playbook passages most relevant to one alert, from Qdrant."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from qdrant_client import QdrantClient

from churnwire.config import Settings
from churnwire.insight_worker.embedding import shared_embedder
from churnwire.insight_worker.knowledge import COLLECTION, Passage, current_folder

log = logging.getLogger(__name__)


class Retriever:
    """Searches the knowledge base; follows a local store to the newest loaded folder."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings.insight
        self._client: QdrantClient | None = None
        self._folder: Path | None = None
        self._lock = asyncio.Lock()
        self.last_seconds = 0.0

    def _connect(self) -> QdrantClient | None:
        if self._settings.qdrant_url:
            if self._client is None:
                self._client = QdrantClient(url=self._settings.qdrant_url)
            return self._client
        folder = current_folder(self._settings.kb_path)
        if folder != self._folder:
            self.close()
            if folder is not None:
                self._client = QdrantClient(path=str(folder))
                log.info("knowledge base opened at %s", folder)
            self._folder = folder
        return self._client

    def search_sync(self, query: str, limit: int | None = None) -> list[Passage]:
        """The ``limit`` passages nearest to ``query`` (none when no knowledge base exists)."""
        started = time.perf_counter()
        client = self._connect()
        if client is None or not client.collection_exists(COLLECTION):
            return []
        vector = shared_embedder().embed([query])[0]
        hits = client.query_points(
            COLLECTION, query=vector.tolist(), limit=limit or self._settings.kb_top_k,
            with_payload=True,
        ).points
        self.last_seconds = time.perf_counter() - started
        return [
            Passage(str(p["passage_id"]), str(p["playbook"]), str(p["title"]),
                    str(p["section"]), str(p["text"]))
            for p in (hit.payload or {} for hit in hits)
        ]

    async def search(self, query: str, limit: int | None = None) -> list[Passage]:
        """``search_sync`` off the event loop (embedding and local search use the CPU)."""
        async with self._lock:
            return await asyncio.to_thread(self.search_sync, query, limit)

    def close(self) -> None:
        """Release the store (a local folder is locked while open)."""
        if self._client is not None:
            self._client.close()
            self._client = None
