"""The knowledge base: Markdown playbooks cut into passages, embedded, stored in Qdrant.

Each ``## `` section of a playbook is one passage, with the playbook's title and its own
heading; its id is ``<file stem>#<section slug>``, which insights cite. With the local store
(no ``CHURNWIRE_QDRANT_URL``) every load writes a new folder under ``$CHURNWIRE_HOME/kb`` and
then points ``CURRENT`` at it: Qdrant's local mode lets one process open a folder at a time,
so the running worker keeps reading the old folder until it sees the new pointer.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client.models import Distance, PointStruct, VectorParams

from churnwire.config import Settings
from churnwire.insight_worker.embedding import DIMENSIONS, shared_embedder

log = logging.getLogger(__name__)

COLLECTION = "playbooks"
POINTER = "CURRENT"
SHIPPED_PLAYBOOKS = Path(__file__).parent / "playbooks"
_NAMESPACE = uuid.UUID("5b1f7f1e-7a35-4bd2-9a51-6f0a2b9c1d44")


@dataclass(frozen=True)
class Passage:
    """One section of a playbook."""

    passage_id: str
    playbook: str
    title: str
    section: str
    text: str

    def payload(self) -> dict[str, Any]:
        """What Qdrant stores beside the vector."""
        return {"passage_id": self.passage_id, "playbook": self.playbook, "title": self.title,
                "section": self.section, "text": self.text}

    def embedding_text(self) -> str:
        """The text that is embedded: titles give a short section its topic."""
        return f"{self.title}. {self.section}. {self.text}"


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")[:60] or "section"


def chunk_playbook(path: Path) -> list[Passage]:
    """The passages of one Markdown playbook (its ``## `` sections)."""
    title, section = path.stem, ""
    lines: list[str] = []
    passages: list[Passage] = []

    def flush() -> None:
        text = " ".join(line.strip() for line in lines if line.strip())
        if section and text:
            passages.append(Passage(f"{path.stem}#{_slug(section)}", path.stem, title, section,
                                    text))

    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            title = line[2:].strip()
        elif line.startswith("## "):
            flush()
            section, lines = line[3:].strip(), []
        else:
            lines.append(line)
    flush()
    return passages


def read_playbooks(directory: Path) -> list[Passage]:
    """Every passage of every ``*.md`` file in ``directory``, in file order."""
    files = sorted(directory.glob("*.md"))
    if not files:
        raise FileNotFoundError(f"no Markdown playbooks (*.md) in {directory}")
    return [passage for path in files for passage in chunk_playbook(path)]


def _write(client: QdrantClient, passages: list[Passage]) -> None:
    if client.collection_exists(COLLECTION):
        client.delete_collection(COLLECTION)
    client.create_collection(
        COLLECTION, vectors_config=VectorParams(size=DIMENSIONS, distance=Distance.COSINE)
    )
    vectors = shared_embedder().embed([p.embedding_text() for p in passages])
    client.upsert(COLLECTION, points=[
        PointStruct(id=str(uuid.uuid5(_NAMESPACE, p.passage_id)), vector=vector.tolist(),
                    payload=p.payload())
        for p, vector in zip(passages, vectors, strict=True)
    ])


def current_folder(kb_path: Path) -> Path | None:
    """The local store folder ``CURRENT`` points at, if any."""
    try:
        name = (kb_path / POINTER).read_text().strip()
    except FileNotFoundError:
        return None
    folder = kb_path / name
    return folder if name and folder.is_dir() else None


def _remove_old_folders(kb_path: Path, keep: Path) -> None:
    for folder in kb_path.iterdir():
        if folder.is_dir() and folder != keep:
            # A folder a running worker still holds is removed by a later load.
            with contextlib.suppress(OSError):
                shutil.rmtree(folder)


def load_knowledge_base(settings: Settings, directory: Path) -> int:
    """Embed the playbooks of ``directory`` into the configured Qdrant; return the passages."""
    passages = read_playbooks(directory)
    insight = settings.insight
    if insight.qdrant_url:
        client = QdrantClient(url=insight.qdrant_url)
        try:
            _write(client, passages)
        finally:
            client.close()
    else:
        insight.kb_path.mkdir(parents=True, exist_ok=True)
        previous = current_folder(insight.kb_path)
        folder = insight.kb_path / f"v{time.time_ns()}"
        client = QdrantClient(path=str(folder))
        try:
            _write(client, passages)
        finally:
            client.close()
        pointer = insight.kb_path / f".{POINTER}.tmp"
        pointer.write_text(folder.name)
        pointer.replace(insight.kb_path / POINTER)
        if previous is not None:
            _remove_old_folders(insight.kb_path, keep=folder)
    log.info("knowledge base: %d passages from %s", len(passages), directory)
    return len(passages)


def ensure_knowledge_base(settings: Settings) -> None:
    """Load the shipped playbooks when no knowledge base exists yet."""
    insight = settings.insight
    if insight.qdrant_url:
        client = QdrantClient(url=insight.qdrant_url)
        try:
            present = client.collection_exists(COLLECTION)
        finally:
            client.close()
    else:
        present = current_folder(insight.kb_path) is not None
    if not present:
        load_knowledge_base(settings, SHIPPED_PLAYBOOKS)
