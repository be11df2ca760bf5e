"""A private PostgreSQL cluster with logical replication, under the churnwire home directory."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import asyncpg

from churnwire.config import redact_url
from churnwire.embedded.component import Component, ComponentStatus
from churnwire.embedded.process import is_alive, read_pid, wait_for_exit

log = logging.getLogger(__name__)

# Written once into postgresql.conf at initdb; the port is passed at every start instead.
_CLUSTER_SETTINGS = """
# churnwire embedded cluster
listen_addresses = '127.0.0.1'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
fsync = on
"""

DATABASE = "churnwire"


def find_pg_bin(tool: str) -> str:
    """Path of a PostgreSQL server tool: on PATH, or in Debian's versioned lib directory."""
    on_path = shutil.which(tool)
    if on_path:
        return on_path
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if not candidates:
        raise FileNotFoundError(
            f"PostgreSQL tool {tool!r} not found; install it with 'apt-get install postgresql'"
        )
    return candidates[-1]


async def probe(url: str, timeout: float = 3.0) -> str | None:
    """None if ``url`` accepts a connection and a query, else the reason it does not."""
    try:
        connection = await asyncpg.connect(url, timeout=timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        return f"{type(error).__name__}: {error}"
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()
    return None


class EmbeddedPostgres(Component):
    """PostgreSQL started from the server binaries, bound to 127.0.0.1 on a private port."""

    name = "postgres"

    @property
    def external(self) -> bool:
        return self.settings.postgres_external

    @property
    def _root(self) -> Path:
        return self.settings.home / "postgres"

    @property
    def _data(self) -> Path:
        return self._root / "data"

    @property
    def _socket_dir(self) -> Path:
        return self._root / "socket"

    def _as_owner(self, command: list[str]) -> list[str]:
        # initdb and postgres refuse to run as root: run them as the postgres account.
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return command

    def _hand_over(self, path: Path) -> None:
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(path, account.pw_uid, account.pw_gid)

    def _initialise(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        self._hand_over(self._root)
        log.info("initialising PostgreSQL cluster in %s", self._data)
        subprocess.run(
            self._as_owner(
                [find_pg_bin("initdb"), "-D", str(self._data), "-U", "postgres",
                 "--auth=trust", "-E", "UTF8", "--locale=C"]
            ),
            check=True,
            capture_output=True,
        )
        with open(self._data / "postgresql.conf", "a") as conf:
            conf.write(_CLUSTER_SETTINGS)

    def start(self) -> None:
        if self.external or self._pid() is not None:
            return
        if not (self._data / "PG_VERSION").exists():
            self._initialise()
        self._socket_dir.mkdir(parents=True, exist_ok=True)
        self._hand_over(self._socket_dir)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        self._hand_over(self.log_file)
        options = (
            f"-p {self.settings.postgres_port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self._socket_dir}"
        )
        result = subprocess.run(
            self._as_owner(
                [find_pg_bin("pg_ctl"), "-D", str(self._data), "-l", str(self.log_file),
                 "-w", "-t", "60", "-o", options, "start"]
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stdout}{result.stderr}")
        self._create_database()

    def _create_database(self) -> None:
        async def create() -> None:
            admin_url = f"postgresql://postgres@127.0.0.1:{self.settings.postgres_port}/postgres"
            connection = await asyncpg.connect(admin_url)
            try:
                exists = await connection.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", DATABASE
                )
                if not exists:
                    await connection.execute(f'CREATE DATABASE "{DATABASE}"')
            finally:
                await connection.close()

        asyncio.run(create())

    def stop(self) -> None:
        pid = self._pid()
        if self.external or pid is None:
            return
        stopped = subprocess.run(
            self._as_owner(
                [find_pg_bin("pg_ctl"), "-D", str(self._data), "-m", "fast", "-w", "stop"]
            ),
            capture_output=True,
            text=True,
        )
        if stopped.returncode == 0 or not is_alive(pid):
            return
        # pg_ctl gives up after its own timeout on a busy machine; the postmaster still owes
        # us a shutdown: fast (SIGINT), then immediate (SIGQUIT) if it does not go.
        log.warning("pg_ctl stop failed (%s); signalling postmaster %d",
                    stopped.stderr.strip() or stopped.returncode, pid)
        for signal_number, grace in ((signal.SIGINT, 60.0), (signal.SIGQUIT, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal_number)
            if wait_for_exit(pid, grace):
                return
        raise RuntimeError(f"PostgreSQL (pid {pid}) did not stop; see {self.log_file}")

    def _pid(self) -> int | None:
        return read_pid(self._data / "postmaster.pid")

    def status(self) -> ComponentStatus:
        problem = asyncio.run(probe(self.settings.postgres_url))
        return ComponentStatus(
            url=redact_url(self.settings.postgres_url),
            healthy=problem is None,
            pid=None if self.external else self._pid(),
            external=self.external,
            detail=problem or "",
        )

