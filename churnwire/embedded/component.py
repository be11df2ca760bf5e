"""What every part of the embedded stack offers to ``churnwire up``, ``down`` and ``status``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from churnwire.config import Settings


@dataclass(frozen=True)
class ComponentStatus:
    """One line of ``churnwire status``: where the component is and whether it answers."""

    url: str
    healthy: bool
    pid: int | None
    external: bool = False
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """The status as a JSON-ready dict."""
        return asdict(self)


class Component(ABC):
    """A service of the stack: embedded (started here) or external (configured by URL)."""

    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def log_file(self) -> Path:
        """Where the component's own output goes."""
        return self.settings.home / "logs" / f"{self.name}.log"

    @property
    @abstractmethod
    def external(self) -> bool:
        """Whether the component is a configured service that churnwire must not start."""

    @abstractmethod
    def start(self) -> None:
        """Start the embedded process if it is not running (no-op when external)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the embedded process if churnwire started it (no-op when external)."""

    @abstractmethod
    def status(self) -> ComponentStatus:
        """Probe the component without changing it."""
