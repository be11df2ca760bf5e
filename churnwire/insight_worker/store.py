"""Insight documents in MongoDB through motor: one per alert id, newest first per customer.

``alert_id`` is unique, so a redelivered alert can never add a second insight; the
``published`` flag lets a redelivery finish a publication that a crash interrupted.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

log = logging.getLogger(__name__)

COLLECTION = "insights"
_HIDDEN = {"_id": False}


def mongo_client(url: str, timeout: float = 5.0) -> AsyncIOMotorClient:  # type: ignore[type-arg]
    """A motor client that gives up on an unreachable server after ``timeout`` seconds."""
    millis = int(timeout * 1000)
    return AsyncIOMotorClient(url, serverSelectionTimeoutMS=millis, connectTimeoutMS=millis,
                              tz_aware=True)


class InsightStore:
    """The ``insights`` collection."""

    def __init__(self, client: AsyncIOMotorClient, database: str) -> None:  # type: ignore[type-arg]
        self._collection = client[database][COLLECTION]

    async def ensure_indexes(self) -> None:
        """The unique alert id and the per-customer orderings (idempotent)."""
        await self._collection.create_index([("alert_id", ASCENDING)], unique=True,
                                            name="alert_id_unique")
        await self._collection.create_index(
            [("customer_id", ASCENDING), ("created_at", DESCENDING)], name="customer_newest"
        )

    async def find(self, alert_id: str) -> dict[str, Any] | None:
        """The insight of an alert, if there is one."""
        document: dict[str, Any] | None = await self._collection.find_one(
            {"alert_id": alert_id}, _HIDDEN
        )
        return document

    async def insert(self, document: dict[str, Any]) -> bool:
        """Store a new insight; False when the alert already has one."""
        try:
            await self._collection.insert_one(dict(document))
        except DuplicateKeyError:
            return False
        return True

    async def mark_published(self, alert_id: str) -> None:
        """Record that the insight reached the ``customer-insights`` topic."""
        await self._collection.update_one({"alert_id": alert_id}, {"$set": {"published": True}})

    async def reusable(self, customer_id: str, drivers_key: str, prompt_version: str,
                       since: datetime) -> dict[str, Any] | None:
        """The newest model insight of the customer for the same drivers since ``since``."""
        cursor = self._collection.find(
            {"customer_id": customer_id, "drivers_key": drivers_key, "generator": "model",
             "prompt_version": prompt_version, "created_at": {"$gte": since.isoformat()}},
            _HIDDEN,
        ).sort("created_at", DESCENDING).limit(1)
        found = await cursor.to_list(length=1)
        return found[0] if found else None

    async def for_customer(self, customer_id: str, limit: int, offset: int) -> list[dict[str, Any]]:
        """A page of the customer's insights, newest first."""
        cursor = self._collection.find({"customer_id": customer_id}, _HIDDEN).sort(
            [("created_at", DESCENDING), ("alert_id", DESCENDING)]
        ).skip(offset).limit(limit)
        documents: list[dict[str, Any]] = await cursor.to_list(length=limit)
        return documents

    async def count(self, query: dict[str, Any] | None = None) -> int:
        """How many insights match ``query``."""
        return int(await self._collection.count_documents(query or {}))
