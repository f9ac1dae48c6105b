"""Request bodies for each API flavour, and the few facts read back from replies. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from bench.client import Markers
from bench.fake_replies import TOOL_NAME

PROMPT = "Write a long story about a lighthouse keeper."
TOOL_OUTPUT = '{"temperature_c": 21, "sky": "clear"}'
_PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
               "required": ["city"]}


class Api(str, Enum):
    CHAT = "chat"
    RESPONSES = "responses"

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self is Api.CHAT else "/v1/responses"

    @property
    def markers(self) -> Markers:
        if self is Api.CHAT:
            # The fake upstream's own chunk layout: text chunks and nothing else start like this.
            return Markers(delta=b'"delta":{"content":"', terminal=b"data: [DONE]")
        return Markers(delta=b'"response.output_text.delta"', terminal=b'"response.completed"')


def first_body(api: Api, model: str, *, stream: bool, store: bool = True, tools: bool = False) -> dict[str, Any]:
    if api is Api.CHAT:
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = [{"type": "function", "function": _function()}]
        return body
    body = {"model": model, "input": PROMPT, "stream": stream}
    if not store:
        body["store"] = False
    if tools:
        body["tools"] = [{"type": "function", **_function()}]
    return body


def _function() -> dict[str, Any]:
    return {"name": TOOL_NAME, "description": "Current weather in a city.", "parameters": _PARAMETERS}


def tool_result_body(api: Api, model: str, call: ToolCallSeen) -> dict[str, Any]:
    """The second leg of a function-tool round trip: the client sends the tool's output back."""
    if api is Api.CHAT:
        assistant = {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.call_id, "type": "function", "function": {"name": TOOL_NAME, "arguments": call.arguments}}]}
        messages = [{"role": "user", "content": PROMPT}, assistant,
                    {"role": "tool", "tool_call_id": call.call_id, "content": TOOL_OUTPUT}]
        return {"model": model, "messages": messages, "stream": True, "stream_options": {"include_usage": True},
                "tools": [{"type": "function", "function": _function()}]}
    return {"model": model, "previous_response_id": call.response_id, "stream": True,
            "input": [{"type": "function_call_output", "call_id": call.call_id, "output": TOOL_OUTPUT}],
            "tools": [{"type": "function", **_function()}]}


@dataclass(frozen=True)
class ToolCallSeen:
    """What the first leg's stream said about the tool call."""

    call_id: str
    arguments: str
    response_id: str | None


def _data_payloads(stream: bytes) -> list[Any]:
    payloads = []
    for line in stream.splitlines():
        if line.startswith(b"data:"):
            data = line[5:].strip()
            if data and data != b"[DONE]":
                payloads.append(orjson.loads(data))
    return payloads


def tool_call_in_stream(api: Api, stream: bytes) -> ToolCallSeen | None:
    payloads = _data_payloads(stream)
    if api is Api.CHAT:
        return _chat_tool_call(payloads)
    for event in payloads:
        if event.get("type") == "response.completed":
            response = event["response"]
            for item in response.get("output") or []:
                if item.get("type") == "function_call":
                    return ToolCallSeen(item["call_id"], item.get("arguments", ""), response["id"])
    return None


def _chat_tool_call(chunks: list[Any]) -> ToolCallSeen | None:
    call_id, pieces = None, []
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            for call in (choice.get("delta") or {}).get("tool_calls") or []:
                call_id = call.get("id") or call_id
                pieces.append((call.get("function") or {}).get("arguments") or "")
    return ToolCallSeen(call_id, "".join(pieces), None) if call_id else None


def json_reply_ok(api: Api, body: bytes) -> bool:
    try:
        reply = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if api is Api.CHAT:
        return bool(reply.get("choices")) and reply["choices"][0].get("finish_reason") == "stop"
    return bool(reply.get("status") == "completed")
