"""Background processes the embedded stack starts: pid files, liveness, stopping, log tails.

Only processes whose pid churnwire recorded itself are ever signalled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file`` if that process is still alive."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if is_alive(pid) else None


def is_alive(pid: int) -> bool:
    """Whether ``pid`` names a running (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[-1].split()[0] != "Z"


def spawn(
    command: Sequence[str],
    *,
    pid_file: Path,
    log_file: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Start ``command`` detached from this session, logging to ``log_file``; return its pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as output:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    pid_file.write_text(f"{process.pid}\n")
    log.info("started %s as pid %d (log %s)", Path(command[0]).name, process.pid, log_file)
    return process.pid


def stop(pid_file: Path, *, sig: int = signal.SIGTERM, timeout: float = 30.0) -> bool:
    """Signal the recorded process, wait for it to exit, SIGKILL it after ``timeout``.

    Returns whether a process was running.
    """
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, sig)
    if not wait_for_exit(pid, timeout):
        log.warning("pid %d ignored signal %d for %.0f s; killing it", pid, sig, timeout)
        os.kill(pid, signal.SIGKILL)
        wait_for_exit(pid, 5.0)
    pid_file.unlink(missing_ok=True)
    return True


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` is gone (reaping it if it is our child); False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not is_alive(pid):
            return True
        time.sleep(0.05)
    return False


def log_tail(log_file: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none."""
    try:
        text = log_file.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {log_file})"
    return "\n".join(text.splitlines()[-lines:])
