"""The insight store for the embedded stack: a MongoDB-wire server (nx-27017, SQLite storage).

No real ``mongod`` is installable from the package registries; nx-27017 speaks the wire
protocol motor and pymongo use. Production points ``CHURNWIRE_MONGO_URL`` at any MongoDB.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from churnwire.config import redact_url
from churnwire.embedded.component import Component, ComponentStatus
from churnwire.embedded.process import read_pid, spawn, stop


def probe(url: str, timeout: float = 3.0) -> str | None:
    """None if the server at ``url`` answers ``ping``, else the reason it does not."""
    client: MongoClient = MongoClient(  # type: ignore[type-arg]
        url, serverSelectionTimeoutMS=int(timeout * 1000), connectTimeoutMS=int(timeout * 1000)
    )
    try:
        client.admin.command("ping")
    except PyMongoError as error:
        return f"{type(error).__name__}: {str(error)[:200]}"
    finally:
        client.close()
    return None


class EmbeddedMongo(Component):
    """nx-27017 on 127.0.0.1, one SQLite file per database under ``$CHURNWIRE_HOME/mongo``."""

    name = "mongo"

    @property
    def external(self) -> bool:
        return self.settings.insight.mongo_external

    @property
    def pid_file(self) -> Path:
        """Where the server's pid is recorded."""
        return self.settings.home / "run" / "mongo.pid"

    def start(self) -> None:
        if self.external or read_pid(self.pid_file) is not None:
            return
        data_dir = self.settings.home / "mongo"
        data_dir.mkdir(parents=True, exist_ok=True)
        spawn(
            [sys.executable, "-m", "nx_27017.nx_27017", "--host", "127.0.0.1",
             "--port", str(self.settings.insight.mongo_port), "--data-dir", str(data_dir),
             # Its default pid file is machine-wide: a second server (tests beside a
             # developer's stack) would refuse to start.
             "--pid-file", str(self.settings.home / "run" / "mongo-server.pid")],
            pid_file=self.pid_file,
            log_file=self.log_file,
        )

    def stop(self) -> None:
        if not self.external:
            stop(self.pid_file, timeout=20.0)

    def status(self) -> ComponentStatus:
        url = self.settings.insight.mongo_url
        problem = probe(url)
        return ComponentStatus(
            url=redact_url(url),
            healthy=problem is None,
            pid=None if self.external else read_pid(self.pid_file),
            external=self.external,
            detail=problem or "",
        )
