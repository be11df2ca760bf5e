"""Shared fixtures: one real embedded stack per test session, on ports of its own.

The session starts PostgreSQL, Redis, the Kafka-protocol broker and the CDC process under
``.churnwire-test/`` (never the user's ``.churnwire/``) and stops them when it ends.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Fixtures of the gateway tests (API keys, an HTTP client, customers written into Redis).
pytest_plugins = ["tests.gateway_helpers"]

REPO = Path(__file__).resolve().parent.parent
# CHURNWIRE_TEST_SLOT=N runs a second test session beside the first: own home, own ports.
SLOT = int(os.environ.get("CHURNWIRE_TEST_SLOT", "0"))
TEST_HOME = REPO / (".churnwire-test" if SLOT == 0 else f".churnwire-test-{SLOT}")
SECOND_WORKER_METRICS_PORT = 9479 + 100 * SLOT

# Set before any churnwire settings are read, so every process of the session uses them.
os.environ.update(
    {
        "CHURNWIRE_HOME": str(TEST_HOME),
        "CHURNWIRE_POSTGRES_PORT": str(54339 + 100 * SLOT),
        "CHURNWIRE_REDIS_PORT": str(63791 + 100 * SLOT),
        "CHURNWIRE_KAFKA_PORT": str(19093 + 100 * SLOT),
        "CHURNWIRE_CDC_METRICS_PORT": str(9476 + 100 * SLOT),
        "CHURNWIRE_WORKER_METRICS_PORT": str(9478 + 100 * SLOT),
        "CHURNWIRE_GATEWAY_PORT": str(8180 + 100 * SLOT),
        "CHURNWIRE_LLM_PORT": str(18091 + 100 * SLOT),
        "CHURNWIRE_MONGO_PORT": str(27118 + 100 * SLOT),
        "CHURNWIRE_INSIGHTS_METRICS_PORT": str(9480 + 100 * SLOT),
        # The stack's own insight worker writes rules insights only (no model tokens), so the
        # alerts other tests raise never keep the model busy; tests/test_insight_worker.py runs
        # workers of its own against the stack's model server.
        "CHURNWIRE_INSIGHTS_DAILY_TOKENS": "0",
    }
)
for variable in ("CHURNWIRE_POSTGRES_URL", "CHURNWIRE_REDIS_URL", "CHURNWIRE_KAFKA_BOOTSTRAP",
                 "CHURNWIRE_LLM_MODEL", "CHURNWIRE_LLM_API_BASE", "CHURNWIRE_MONGO_URL",
                 "CHURNWIRE_QDRANT_URL", "CHURNWIRE_INSIGHTS"):
    os.environ.pop(variable, None)

from churnwire.config import Settings, load_settings  # noqa: E402
from churnwire.embedded.stack import Stack  # noqa: E402


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings of the test stack."""
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Stack]:
    """The running embedded stack, fresh for this session, stopped at its end."""
    leftover = Stack(settings)
    leftover.down()
    shutil.rmtree(TEST_HOME, ignore_errors=True)
    running = Stack(settings)
    try:
        running.up(timeout=180)
        yield running
    finally:
        running.down()


@pytest.fixture
def unique() -> str:
    """A short id prefix so tests sharing the stack never touch each other's rows."""
    return uuid.uuid4().hex[:10]


# Modules that need the event-time clock to still follow CDNOW run before any test inserts
# orders at today's date, in this order (the replay must see its history unloaded).
FIRST_MODULES = ("test_models_replay.py", "test_deploy_monitoring.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run FIRST_MODULES first and in their order, keeping the order of everything else."""
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return FIRST_MODULES.index(name) if name in FIRST_MODULES else len(FIRST_MODULES)

    items.sort(key=rank)
