"""Playbook passages most relevant to one alert, from Qdrant.

With the local store, the worker copies the current folder into an in-memory collection and
lets the folder go at once: Qdrant's local mode allows one process per folder, and several
workers, ``kb load`` and ``insights eval`` must be able to read it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from qdrant_client import QdrantClient
from qdrant_client.models import Distance, PointStruct, VectorParams

from churnwire.config import Settings
from churnwire.insight_worker.embedding import DIMENSIONS, shared_embedder
from churnwire.insight_worker.knowledge import COLLECTION, Passage, current_folder

log = logging.getLogger(__name__)

OPEN_ATTEMPTS = 50
OPEN_RETRY_SECONDS = 0.2


def _open_folder(folder: Path) -> QdrantClient:
    """The local store at ``folder``, waiting while another process holds it briefly."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return QdrantClient(path=str(folder))
        except RuntimeError:
            if attempt + 1 == OPEN_ATTEMPTS:
                raise
            time.sleep(OPEN_RETRY_SECONDS)
    raise AssertionError("unreachable")


def _copy_to_memory(folder: Path) -> QdrantClient:
    source = _open_folder(folder)
    points: list[PointStruct] = []
    try:
        if source.collection_exists(COLLECTION):
            offset = None
            while True:
                batch, offset = source.scroll(COLLECTION, limit=256, offset=offset,
                                              with_payload=True, with_vectors=True)
                points += [PointStruct(id=p.id, vector=p.vector, payload=p.payload)  # type: ignore[arg-type]
                           for p in batch]
                if offset is None:
                    break
    finally:
        source.close()
    memory = QdrantClient(":memory:")
    memory.create_collection(
        COLLECTION, vectors_config=VectorParams(size=DIMENSIONS, distance=Distance.COSINE)
    )
    if points:
        memory.upsert(COLLECTION, points=points)
    log.info("knowledge base: %d passages read from %s", len(points), folder)
    return memory


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
                self._client = _copy_to_memory(folder)
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
        """``search_sync`` off the event loop (embedding and search use the CPU)."""
        async with self._lock:
            return await asyncio.to_thread(self.search_sync, query, limit)

    def close(self) -> None:
        """Drop the client (and its in-memory copy)."""
        if self._client is not None:
            self._client.close()
            self._client = None
