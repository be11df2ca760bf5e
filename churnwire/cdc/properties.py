"""Debezium Postgres connector properties derived from churnwire's settings."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from churnwire.config import Settings
from churnwire.data.schema import CAPTURED_TABLES

HEARTBEAT_INTERVAL_MS = 5000


def cdc_state_dir(settings: Settings) -> Path:
    """Where the CDC process keeps its offsets, status and Debezium's own log."""
    return settings.home / "cdc"


def connector_properties(settings: Settings) -> dict[str, str]:
    """Properties for the embedded engine: pgoutput, durable file offsets, heartbeats.

    ``poll.interval.ms`` trades idle CPU for latency (see docs/adr/0003-cdc-poll-interval.md).
    """
    url = urlsplit(settings.postgres_url)
    state = cdc_state_dir(settings)
    return {
        "name": f"churnwire-cdc-{settings.topic_prefix}",
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput",
        "database.hostname": url.hostname or "127.0.0.1",
        "database.port": str(url.port or 5432),
        "database.user": unquote(url.username or "postgres"),
        "database.password": unquote(url.password or ""),
        "database.dbname": url.path.lstrip("/") or "postgres",
        "topic.prefix": settings.topic_prefix,
        "slot.name": settings.cdc_slot,
        "publication.name": settings.cdc_publication,
        "publication.autocreate.mode": "filtered",
        "table.include.list": ",".join(CAPTURED_TABLES),
        "snapshot.mode": "initial",
        "decimal.handling.mode": "string",
        "time.precision.mode": "adaptive_time_microseconds",
        "tombstones.on.delete": "true",
        # Only churnwire's own fences (see churnwire.streams.idle) among logical messages.
        "message.prefix.include.list": "churnwire\\.fence",
        "heartbeat.interval.ms": str(HEARTBEAT_INTERVAL_MS),
        "poll.interval.ms": str(settings.cdc_poll_interval_ms),
        "max.batch.size": "2048",
        "offset.storage": "org.apache.kafka.connect.storage.FileOffsetBackingStore",
        "offset.storage.file.filename": str(state / "offsets.dat"),
        "offset.flush.interval.ms": "1000",
        "converter.schemas.enable": "false",
        "key.converter.schemas.enable": "false",
        "value.converter.schemas.enable": "false",
    }
