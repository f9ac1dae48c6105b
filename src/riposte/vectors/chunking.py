"""Token chunking with the core's offline tokenizer (cl100k_base, as usage counting uses)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import tiktoken

from riposte.engine.usage import OFFLINE_ENCODING
from riposte.vectors.params import invalid, only_keys

MIN_CHUNK_TOKENS = 100
MAX_CHUNK_TOKENS = 4096


@dataclass(frozen=True)
class ChunkingStrategy:
    max_chunk_size_tokens: int
    chunk_overlap_tokens: int

    def as_object(self) -> dict[str, Any]:
        """The wire form (`StaticFileChunkingStrategyObject`); `auto` is reported as what it means."""
        return {"type": "static", "static": {"max_chunk_size_tokens": self.max_chunk_size_tokens,
                                             "chunk_overlap_tokens": self.chunk_overlap_tokens}}


# OpenAI documents `auto` as 800-token chunks overlapping by 400 tokens.
AUTO = ChunkingStrategy(max_chunk_size_tokens=800, chunk_overlap_tokens=400)


@dataclass(frozen=True)
class TextChunk:
    index: int
    text: str
    token_count: int


def parse_chunking_strategy(raw: Any, param: str = "chunking_strategy") -> ChunkingStrategy:
    if raw is None:
        return AUTO
    if not isinstance(raw, dict):
        raise invalid(param, "must be an object")
    kind = raw.get("type")
    if kind == "auto":
        only_keys(raw, {"type"}, param)
        return AUTO
    if kind != "static":
        raise invalid(f"{param}.type", "must be 'auto' or 'static'")
    only_keys(raw, {"type", "static"}, param)
    static = raw.get("static")
    if not isinstance(static, dict):
        raise invalid(f"{param}.static", "must be an object")
    only_keys(static, {"max_chunk_size_tokens", "chunk_overlap_tokens"}, f"{param}.static")
    size = _integer(static.get("max_chunk_size_tokens"), f"{param}.static.max_chunk_size_tokens")
    overlap = _integer(static.get("chunk_overlap_tokens"), f"{param}.static.chunk_overlap_tokens")
    if not MIN_CHUNK_TOKENS <= size <= MAX_CHUNK_TOKENS:
        raise invalid(f"{param}.static.max_chunk_size_tokens",
                       f"must be between {MIN_CHUNK_TOKENS} and {MAX_CHUNK_TOKENS}")
    if overlap < 0 or overlap > size // 2:
        raise invalid(f"{param}.static.chunk_overlap_tokens",
                       "must be at least 0 and at most half of max_chunk_size_tokens")
    return ChunkingStrategy(max_chunk_size_tokens=size, chunk_overlap_tokens=overlap)


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(OFFLINE_ENCODING)


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def chunk_text(text: str, strategy: ChunkingStrategy) -> list[TextChunk]:
    """Windows of `max` tokens, each starting `max - overlap` tokens after the previous one.

    The last window is the one that reaches the end; no window lies wholly inside another.
    """
    encoding = _encoding()
    tokens = encoding.encode(text, disallowed_special=())
    step = strategy.max_chunk_size_tokens - strategy.chunk_overlap_tokens
    chunks: list[TextChunk] = []
    start = 0
    while start < len(tokens):
        window = tokens[start:start + strategy.max_chunk_size_tokens]
        # A window edge can split a multi-byte character; drop the partial bytes, not the chunk.
        piece = encoding.decode_bytes(window).decode("utf-8", errors="ignore")
        if piece.strip():
            chunks.append(TextChunk(index=len(chunks), text=piece, token_count=len(window)))
        if start + strategy.max_chunk_size_tokens >= len(tokens):
            break
        start += step
    return chunks


def _integer(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(param, "must be an integer")
    return value

