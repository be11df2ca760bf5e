"""The embedded stack: status of every component, external services left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from churnwire.config import load_settings
from churnwire.embedded.redis import EmbeddedRedis
from churnwire.embedded.stack import Stack


def test_status_json_has_every_component(stack: Stack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "churnwire", "status", "--json"],
        capture_output=True, text=True, timeout=60,
    )
    status = json.loads(result.stdout)
    assert set(status) >= {"postgres", "redis", "kafka", "cdc"}
    for name in ("postgres", "redis", "kafka", "cdc"):
        assert status[name]["healthy"] is True, status[name]
        assert isinstance(status[name]["pid"], int)
        assert status[name]["url"]
    assert result.returncode == 0


def test_a_configured_redis_is_used_as_given_and_never_started(stack: Stack) -> None:
    environ = {**os.environ, "CHURNWIRE_REDIS_URL": stack.settings.redis_url}
    external = EmbeddedRedis(load_settings(environ))
    external.start()  # must be a no-op
    external.stop()  # must not stop the session's Redis
    status = external.status()
    assert status.external is True and status.pid is None and status.healthy is True
    assert stack.redis.status().healthy is True
