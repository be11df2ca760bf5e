"""The model registry: one folder per version under a root path, and an atomic active pointer.

Layout::

    <root>/ACTIVE                      the active version, replaced atomically (write + rename)
    <root>/<version>/model.onnx        what the worker scores with (ONNX Runtime)
    <root>/<version>/model.xgb.json    the same model as an XGBoost booster (for contributions)
    <root>/<version>/card.json         model card: features, data window, metrics, baselines
    <root>/<version>/card.md           the card for people
    <root>/<version>/roc.png, calibration.png
    <root>/<version>/manifest.json     sha256 and size of every file above

A version is only ever added whole (its folder is renamed into place) and never changed; a
version whose files do not match their manifest, or that ONNX Runtime cannot open, is refused
by :meth:`ModelRegistry.load` and :meth:`ModelRegistry.promote`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnwire.models.champion import ONNX_INPUT, ChampionModel, onnx_session

log = logging.getLogger(__name__)

ACTIVE_FILE = "ACTIVE"
MANIFEST = "manifest.json"
ONNX_FILE = "model.onnx"
BOOSTER_FILE = "model.xgb.json"
CARD_JSON = "card.json"
CARD_MARKDOWN = "card.md"
ARTIFACT_FILES = (ONNX_FILE, BOOSTER_FILE, CARD_JSON, CARD_MARKDOWN, "roc.png", "calibration.png")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.\-]{0,63}$")


class ModelRejected(Exception):
    """A model version cannot be used; the message names the version, the file and the fault."""

    def __init__(self, version: str, file: str | None, problem: str) -> None:
        where = f"{file} of model {version}" if file else f"model {version}"
        super().__init__(f"{where}: {problem}")
        self.version = version
        self.file = file
        self.problem = problem


class ModelNotFound(ModelRejected):
    """No model of that version is registered."""


@dataclass(frozen=True)
class ModelInfo:
    """One registered version as ``models list`` shows it."""

    version: str
    created_at: str
    active: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``churnwire models list --json``."""
        return {
            "version": self.version,
            "created_at": self.created_at,
            "active": self.active,
            "metrics": self.metrics,
            "path": str(self.path) if self.path else None,
        }


def new_version(now: datetime | None = None) -> str:
    """A version id that sorts by creation time, e.g. ``20261204T051209-3f2a``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with temporary.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class ModelRegistry:
    """Versions of the churn model under ``root`` (``settings.model_dir``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _folder(self, version: str) -> Path:
        if not _VERSION.match(version):
            raise ModelNotFound(version, None, "not a valid version id")
        return self.root / version

    def active_version(self) -> str | None:
        """The active version, or None before the first promotion (one small file read)."""
        try:
            version = (self.root / ACTIVE_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        return version or None

    def versions(self) -> list[ModelInfo]:
        """Every registered version, oldest first."""
        if not self.root.is_dir():
            return []
        active = self.active_version()
        found = []
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or folder.name.startswith(".") or not _VERSION.match(
                folder.name
            ):
                continue
            if not (folder / MANIFEST).is_file():
                continue
            card = self._read_card_quietly(folder)
            found.append(
                ModelInfo(
                    version=folder.name,
                    created_at=str(card.get("created_at", "")),
                    active=folder.name == active,
                    metrics=dict(card.get("metrics", {}).get("model", {})),
                    path=folder,
                )
            )
        return found

    @staticmethod
    def _read_card_quietly(folder: Path) -> dict[str, Any]:
        try:
            card = json.loads((folder / CARD_JSON).read_text())
        except (OSError, ValueError):
            return {}
        return card if isinstance(card, dict) else {}

    def card(self, version: str) -> dict[str, Any]:
        """The model card of ``version`` (verified against its manifest)."""
        folder = self._verified_folder(version)
        return self._parse_card(version, folder)

    def load(self, version: str | None = None) -> ChampionModel:
        """The model of ``version`` (None: the active one), verified file by file."""
        if version is None:
            version = self.active_version()
            if version is None:
                raise ModelNotFound("(active)", ACTIVE_FILE, f"no active model under {self.root}")
        folder = self._verified_folder(version)
        card = self._parse_card(version, folder)
        columns = card["columns"]
        try:
            session = onnx_session((folder / ONNX_FILE).read_bytes())
        except Exception as error:  # ONNX Runtime raises several unrelated types
            raise ModelRejected(
                version, ONNX_FILE, f"ONNX Runtime cannot open it: {error}"
            ) from None
        _check_input(version, session, len(columns))
        model = ChampionModel(
            version=version,
            session=session,
            columns=columns,
            categories=card.get("categories", {}),
            threshold=float(card["threshold"]),
            booster_path=folder / BOOSTER_FILE,
            drift_reference=card.get("drift_reference"),
        )
        log.info("loaded model %s (%d columns) from %s", version, len(columns), folder)
        return model

    def _verified_folder(self, version: str) -> Path:
        folder = self._folder(version)
        if not folder.is_dir():
            raise ModelNotFound(version, None, f"no such version under {self.root}")
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            files = manifest["files"]
        except FileNotFoundError:
            raise ModelRejected(version, MANIFEST, "missing") from None
        except (ValueError, KeyError, TypeError) as error:
            raise ModelRejected(version, MANIFEST, f"unreadable: {error}") from None
        for name in ARTIFACT_FILES:
            if name not in files:
                raise ModelRejected(version, name, "not listed in the manifest")
        for name, expected in files.items():
            path = folder / name
            if not path.is_file():
                raise ModelRejected(version, name, "missing")
            actual = sha256_file(path)
            if actual != expected.get("sha256"):
                raise ModelRejected(
                    version,
                    name,
                    f"sha256 {actual[:12]}... does not match the manifest's "
                    f"{str(expected.get('sha256'))[:12]}... (corrupt or changed after training)",
                )
        return folder

    @staticmethod
    def _parse_card(version: str, folder: Path) -> dict[str, Any]:
        try:
            card = json.loads((folder / CARD_JSON).read_text())
        except ValueError as error:
            raise ModelRejected(version, CARD_JSON, f"not JSON: {error}") from None
        for key in ("columns", "threshold"):
            if not isinstance(card, dict) or key not in card:
                raise ModelRejected(version, CARD_JSON, f"has no {key!r}")
        return card

    def promote(self, version: str) -> None:
        """Make ``version`` the active model; a version that does not load is refused."""
        self.load(version)
        previous = self.active_version()
        _write_atomically(self.root / ACTIVE_FILE, version + "\n")
        log.info("promoted model %s (previously %s)", version, previous or "none")

    def register(self, staging: Path) -> ModelInfo:
        """Add the artifact folder ``staging`` (named after its version) as a new version.

        The manifest is written, the folder is renamed into the root in one step, and the new
        version is loaded once to prove it works; a version that does not load is removed.
        """
        version = staging.name
        folder = self._folder(version)
        if folder.exists():
            raise ModelRejected(version, None, "already registered")
        manifest = {
            "version": version,
            "files": {
                name: {
                    "sha256": sha256_file(staging / name),
                    "bytes": (staging / name).stat().st_size,
                }
                for name in ARTIFACT_FILES
            },
        }
        _write_atomically(staging / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        self.root.mkdir(parents=True, exist_ok=True)
        os.replace(staging, folder)
        _fsync_directory(self.root)
        try:
            self.load(version)
        except ModelRejected:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        log.info("registered model %s at %s", version, folder)
        return next(info for info in self.versions() if info.version == version)

    def staging_folder(self, version: str) -> Path:
        """A fresh folder on the registry's file system to assemble ``version`` in."""
        staging_root = self.root / ".staging"
        staging_root.mkdir(parents=True, exist_ok=True)
        folder = staging_root / self._folder(version).name
        folder.mkdir()
        return folder


def _check_input(version: str, session: Any, columns: int) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != ONNX_INPUT:
        raise ModelRejected(version, ONNX_FILE, f"expected one input named {ONNX_INPUT!r}")
    width = inputs[0].shape[-1]
    if isinstance(width, int) and width != columns:
        raise ModelRejected(
            version, ONNX_FILE, f"takes {width} features but the card lists {columns} columns"
        )
