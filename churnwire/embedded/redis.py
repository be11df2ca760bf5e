"""A private Redis server bound to 127.0.0.1, with an append-only file under the home directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from churnwire.config import redact_url
from churnwire.embedded.component import Component, ComponentStatus
from churnwire.embedded.process import read_pid, spawn, stop


def probe(url: str, timeout: float = 3.0) -> str | None:
    """None if the Redis at ``url`` answers PING, else the reason it does not."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"{type(error).__name__}: {error}"
    finally:
        client.close()
    return None


class EmbeddedRedis(Component):
    """``redis-server`` with AOF persistence so feature state survives ``down``/``up``."""

    name = "redis"

    @property
    def external(self) -> bool:
        return self.settings.redis_external

    @property
    def _pid_file(self) -> Path:
        return self.settings.home / "run" / "redis.pid"

    def start(self) -> None:
        if self.external or read_pid(self._pid_file) is not None:
            return
        server = shutil.which("redis-server")
        if server is None:
            raise FileNotFoundError(
                "redis-server not found; install it with 'apt-get install redis-server'"
            )
        data_dir = self.settings.home / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        spawn(
            [server, "--port", str(self.settings.redis_port), "--bind", "127.0.0.1",
             "--dir", str(data_dir), "--save", "", "--appendonly", "yes",
             "--appendfsync", "everysec", "--daemonize", "no"],
            pid_file=self._pid_file,
            log_file=self.log_file,
        )

    def stop(self) -> None:
        if not self.external:
            stop(self._pid_file)

    def status(self) -> ComponentStatus:
        problem = probe(self.settings.redis_url)
        return ComponentStatus(
            url=redact_url(self.settings.redis_url),
            healthy=problem is None,
            pid=None if self.external else read_pid(self._pid_file),
            external=self.external,
            detail=problem or "",
        )
