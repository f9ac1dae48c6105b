"""The response object: every field the Open Responses spec requires, with concrete values."""

from __future__ import annotations

import time
from typing import Any

from riposte.engine.request import CreateResponseRequest

ResponseObject = dict[str, Any]


def new_response_object(request: CreateResponseRequest, response_id: str) -> ResponseObject:
    text = dict(request.text or {})
    text.setdefault("format", {"type": "text"})
    response: ResponseObject = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": bool(request.background),
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "model": request.model,
        "output": [],
        "parallel_tool_calls": True if request.parallel_tool_calls is None else request.parallel_tool_calls,
        "previous_response_id": request.previous_response_id,
        "conversation": None,
        "prompt_cache_key": request.prompt_cache_key,
        "prompt_cache_retention": request.prompt_cache_retention,
        "reasoning": _echoed_reasoning(request),
        "safety_identifier": request.safety_identifier,
        "service_tier": request.service_tier or "default",
        "store": True if request.store is None else request.store,
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "text": text,
        "tool_choice": "auto" if request.tool_choice is None else request.tool_choice,
        "tools": [_echoed_tool(t) for t in request.tools or []],
        "top_logprobs": request.top_logprobs or 0,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "truncation": request.truncation or "disabled",
        "usage": None,
        "user": request.user,
        "metadata": dict(request.metadata or {}),
    }
    if request.client_metadata is not None:
        # Not in the SDK's Response type (Codex sends it as an extra field); echoed only when given.
        response["client_metadata"] = dict(request.client_metadata)
    return response


def _echoed_reasoning(request: CreateResponseRequest) -> dict[str, Any]:
    reasoning = request.reasoning or {}
    echoed: dict[str, Any] = {
        "effort": reasoning.get("effort"),
        "summary": reasoning.get("summary", reasoning.get("generate_summary")),
    }
    if reasoning.get("context") is not None:
        echoed["context"] = reasoning["context"]
    return echoed


def _echoed_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") == "function":
        return {"parameters": None, "strict": None, "description": None, **tool}
    return dict(tool)


def snapshot(response: ResponseObject) -> ResponseObject:
    """A copy for an event, so later mutation of the live object does not change what was sent."""
    return {**response, "output": list(response["output"])}
