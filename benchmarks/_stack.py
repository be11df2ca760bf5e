"""Shared benchmark plumbing: a private embedded stack, process CPU sampling, machine facts.

A benchmark owns its stack: its own home directory and ports, set as ``CHURNWIRE_*`` variables
before any settings are read, so it never touches a developer's ``.churnwire/`` or the test
suite's ``.churnwire-test/``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import fields
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from churnwire.config import Settings, load_settings
from churnwire.embedded.stack import Stack

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
_PROTECTED_HOMES = {REPO / ".churnwire", REPO / ".churnwire-test"}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

log = logging.getLogger(__name__)


def isolate_environment(variables: Mapping[str, str]) -> None:
    """Drop every inherited ``CHURNWIRE_*`` variable, then set ``variables``.

    Child processes of the stack inherit ``os.environ``, so this also configures them; a
    ``CHURNWIRE_POSTGRES_URL`` left in the shell would otherwise point the benchmark at it.
    """
    for name in [name for name in os.environ if name.startswith("CHURNWIRE_")]:
        del os.environ[name]
    os.environ.update(variables)


def bench_environment(home_name: str, port_offset: int, **extra: str) -> dict[str, str]:
    """``CHURNWIRE_HOME`` under the repository and every ``*_PORT`` setting moved by an offset.

    Every port of the stack (including components added later) is taken from the settings'
    defaults, so a benchmark never shares a port with a developer's stack, the tests or
    another benchmark as long as offsets differ.
    """
    defaults = load_settings({})
    variables = {"CHURNWIRE_HOME": str(REPO / home_name), **extra}
    for field in fields(defaults):
        if field.name.endswith("_port"):
            variables[f"CHURNWIRE_{field.name.upper()}"] = str(
                getattr(defaults, field.name) + port_offset
            )
    return variables


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def private_stack(timeout: float = 180.0) -> Iterator[Stack]:
    """Start a fresh embedded stack from the current environment; stop it on exit or error.

    Leftovers of a crashed earlier run under the same home are stopped before the home is
    deleted, so no process is orphaned from its pid file.
    """
    settings = load_settings()
    if settings.home in _PROTECTED_HOMES or not settings.home.name.startswith(".churnwire-"):
        raise RuntimeError(f"refusing to use {settings.home} as a benchmark home")
    defaulted = _defaulted_ports(settings)
    if defaulted:
        raise RuntimeError(f"set {', '.join(defaulted)} so the benchmark uses ports of its own")

    with _exclusive(settings.home):
        Stack(settings).down()
        shutil.rmtree(settings.home, ignore_errors=True)
        previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
        stack = Stack(settings)
        try:
            started = time.monotonic()
            stack.up(timeout=timeout)
            log.info(
                "benchmark stack up in %.1f s under %s", time.monotonic() - started, settings.home
            )
            yield stack
        finally:
            log.info("benchmark stack stopped: %s", ", ".join(stack.down()))
            signal.signal(signal.SIGTERM, previous)


def _defaulted_ports(settings: Settings) -> list[str]:
    # A port left at its default would collide with a developer's stack on the same machine.
    names = [
        f"CHURNWIRE_{field.name.upper()}"
        for field in fields(settings)
        if field.name.endswith("_port")
    ]
    if settings.insight.enabled:
        names += ["CHURNWIRE_LLM_PORT", "CHURNWIRE_MONGO_PORT", "CHURNWIRE_INSIGHTS_METRICS_PORT"]
    return [name for name in names if name not in os.environ]


@contextmanager
def _exclusive(home: Path) -> Iterator[None]:
    # A second run on the same home would stop the first one's processes through the pid files.
    lock_path = Path(tempfile.gettempdir()) / f"churnwire-bench{str(home).replace('/', '_')}.lock"
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another benchmark is running on {home}") from None
        yield


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time consumed so far by ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime field 14 and stime field 15 of stat(5).
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _machine_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def cpu_use(pids: Mapping[str, int], seconds: float) -> dict[str, float]:
    """Percent of one core each named process used over ``seconds``, and machine-wide busy %."""
    before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
    busy_before, total_before = _machine_ticks()
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    busy_after, total_after = _machine_ticks()
    shares = {
        name: round(100 * (process_cpu_seconds(pid) - before[name]) / elapsed, 2)
        for name, pid in pids.items()
    }
    shares["machine_busy_pct_of_all_cores"] = round(
        100 * (busy_after - busy_before) / max(total_after - total_before, 1), 2
    )
    return shares


def percentiles_ms(seconds: list[float]) -> dict[str, float | int]:
    """p50/p95/p99/max/mean in milliseconds of a list of durations in seconds."""
    if not seconds:
        return {"count": 0}
    values = np.asarray(seconds) * 1000
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "count": len(seconds),
        "p50_ms": round(float(p50), 1),
        "p95_ms": round(float(p95), 1),
        "p99_ms": round(float(p99), 1),
        "max_ms": round(float(values.max()), 1),
        "mean_ms": round(float(values.mean()), 1),
    }


def processes_matching(*needles: str) -> list[str]:
    """Command lines (shortened) of running processes that contain any of ``needles``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if any(needle in command for needle in needles):
            found.append(f"{cmdline.parent.name}: {command[:160]}")
    return found


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """Cores, memory, load, Python and package versions of the machine running the benchmark."""
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {package: _version(package) for package in packages},
    }
