"""What the fake upstream answers, encoded once into ready-to-send HTTP bytes.

Pure: no I/O. The server only picks a prepared reply and writes its bytes, so the upstream's
own cost per token is close to nothing and does not blur what the gateway costs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

CREATED = 1_700_000_000
WORDS = (" lorem", " ipsum", " dolor", " sit", " amet", " consectetur", " adipiscing", " elit")
TOOL_NAME = "get_weather"
TOOL_ARGUMENT_PIECES = ('{"city', '": "Par', 'is", "unit', '": "celsius"}')
EMBEDDING_DIMENSIONS = 1536

STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n" \
              b"transfer-encoding: chunked\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"

_MODEL_PART = re.compile(r"^(?P<key>[td])(?P<value>\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class ModelSpec:
    """How a model name asks to be answered: `bench-t256-d5` is 256 tokens, 5 ms apart."""

    tokens: int
    delay_ms: float


@dataclass(frozen=True)
class StreamReply:
    """`head` goes out at once, then one `tokens` entry per tick, then `tail` closes the stream."""

    head: bytes
    tokens: tuple[bytes, ...]
    tail: bytes


def parse_model(name: str, default: ModelSpec) -> ModelSpec:
    tokens, delay = default.tokens, default.delay_ms
    for part in name.rsplit("/", 1)[-1].split("-"):
        match = _MODEL_PART.match(part)
        if match is None:
            continue
        if match["key"] == "t":
            tokens = max(1, int(float(match["value"])))
        else:
            delay = float(match["value"])
    return ModelSpec(tokens=tokens, delay_ms=delay)


def wants_tool_call(body: dict[str, Any]) -> bool:
    """Call the tool when tools are offered and the conversation does not end in a tool result."""
    messages = body.get("messages") or []
    last_role = messages[-1].get("role") if messages and isinstance(messages[-1], dict) else None
    return bool(body.get("tools")) and last_role != "tool"


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _sse(payload: dict[str, Any]) -> bytes:
    return http_chunk(b"data: " + orjson.dumps(payload) + b"\n\n")


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def _usage(completion_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": 12, "completion_tokens": completion_tokens, "total_tokens": 12 + completion_tokens}


def _words(count: int) -> list[str]:
    return [WORDS[i % len(WORDS)] for i in range(count)]


@lru_cache(maxsize=64)
def text_stream(model: str, tokens: int, with_usage: bool) -> StreamReply:
    head = _sse(_chunk(model, {"role": "assistant", "content": ""}))
    pieces = tuple(_sse(_chunk(model, {"content": word})) for word in _words(tokens))
    return StreamReply(STREAM_HEAD + head, pieces, _stream_end(model, "stop", tokens, with_usage))


@lru_cache(maxsize=64)
def tool_call_stream(model: str, with_usage: bool) -> StreamReply:
    opening = {"index": 0, "id": "call_bench", "type": "function", "function": {"name": TOOL_NAME, "arguments": ""}}
    head = _sse(_chunk(model, {"role": "assistant", "content": None, "tool_calls": [opening]}))
    pieces = tuple(_sse(_chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
                   for piece in TOOL_ARGUMENT_PIECES)
    return StreamReply(STREAM_HEAD + head, pieces, _stream_end(model, "tool_calls", len(pieces), with_usage))


def _stream_end(model: str, finish_reason: str, tokens: int, with_usage: bool) -> bytes:
    tail = _sse(_chunk(model, {}, finish_reason))
    if with_usage:
        tail += _sse({**_chunk(model, {}), "choices": [], "usage": _usage(tokens)})
    return tail + http_chunk(b"data: [DONE]\n\n") + LAST_CHUNK


@lru_cache(maxsize=64)
def text_completion(model: str, tokens: int) -> bytes:
    message = {"role": "assistant", "content": "".join(_words(tokens))}
    return json_reply(_completion(model, message, "stop", tokens))


@lru_cache(maxsize=64)
def tool_call_completion(model: str) -> bytes:
    call = {"id": "call_bench", "type": "function",
            "function": {"name": TOOL_NAME, "arguments": "".join(TOOL_ARGUMENT_PIECES)}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return json_reply(_completion(model, message, "tool_calls", len(TOOL_ARGUMENT_PIECES)))


def _completion(model: str, message: dict[str, Any], finish_reason: str, tokens: int) -> dict[str, Any]:
    return {"id": "chatcmpl-bench", "object": "chat.completion", "created": CREATED, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": _usage(tokens)}


def embeddings(body: dict[str, Any]) -> bytes:
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else list(raw or [])
    dimensions = int(body.get("dimensions") or EMBEDDING_DIMENSIONS)
    data = [{"object": "embedding", "index": i, "embedding": _unit_vector(str(text), dimensions)}
            for i, text in enumerate(texts)]
    return json_reply({"object": "list", "data": data, "model": body.get("model", ""),
                       "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}})


def _unit_vector(text: str, dimensions: int) -> list[float]:
    vector = [0.0] * dimensions
    vector[sum(text.encode()) % dimensions] = 1.0
    return vector


def models(ids: list[str]) -> bytes:
    data = [{"id": model_id, "object": "model", "created": CREATED, "owned_by": "bench"} for model_id in ids]
    return json_reply({"object": "list", "data": data})


def json_reply(payload: dict[str, Any], status: str = "200 OK") -> bytes:
    body = orjson.dumps(payload)
    head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % (status.encode(), len(body))
    return head + body
