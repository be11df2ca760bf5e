"""A Kafka-protocol broker for the embedded stack: the ``noida-db`` binary, Kafka service only.

noida-db keeps its data in memory and saves it to one file when it receives SIGINT, so it is
always stopped with SIGINT sent to the broker binary itself (its Python wrapper does not pass
the signal on). Production uses real Kafka; nothing else in churnwire depends on this broker.
"""

from __future__ import annotations

import os
import signal
from importlib.resources import files
from pathlib import Path

from confluent_kafka.admin import AdminClient

from churnwire.config import Settings
from churnwire.embedded.component import Component, ComponentStatus
from churnwire.embedded.process import read_pid, spawn, stop
from churnwire.kafka_client import confluent_config


def broker_binary() -> Path:
    """The noida-db executable shipped inside its wheel."""
    binary = Path(str(files("noida_db").joinpath("noida-db")))
    if not binary.is_file():
        raise FileNotFoundError(f"noida-db binary missing at {binary}; reinstall noida-db")
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


def probe(settings: Settings, timeout: float = 3.0) -> str | None:
    """None if the cluster answers a metadata request, else the reason it does not."""
    admin = AdminClient(confluent_config(settings, **{"socket.timeout.ms": int(timeout * 1000)}))
    try:
        admin.list_topics(timeout=timeout)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


class EmbeddedKafka(Component):
    """noida-db serving the Kafka protocol on 127.0.0.1 at a private port."""

    name = "kafka"

    @property
    def external(self) -> bool:
        return self.settings.kafka_external

    @property
    def _pid_file(self) -> Path:
        return self.settings.home / "run" / "kafka.pid"

    def start(self) -> None:
        if self.external or read_pid(self._pid_file) is not None:
            return
        data_dir = self.settings.home / "kafka"
        data_dir.mkdir(parents=True, exist_ok=True)
        spawn(
            [str(broker_binary()), "start", "--only", "kafka", "--host", "127.0.0.1",
             "--kafka-port", str(self.settings.kafka_port), "--data-dir", str(data_dir)],
            pid_file=self._pid_file,
            log_file=self.log_file,
        )

    def stop(self) -> None:
        if not self.external:
            stop(self._pid_file, sig=signal.SIGINT, timeout=60.0)

    def status(self) -> ComponentStatus:
        problem = probe(self.settings)
        return ComponentStatus(
            url=self.settings.kafka_bootstrap,
            healthy=problem is None,
            pid=None if self.external else read_pid(self._pid_file),
            external=self.external,
            detail=problem or "",
        )
