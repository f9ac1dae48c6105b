"""Recordings of server-side tool runtime calls (web search providers), in the reference format.

Unlike chat and embeddings, these calls have no HTTP body in the recording: the request names the
provider, the tool and its keyword arguments, and the response is the recording system's
`ToolInvocationResult` whose `content` is exactly what the model read (see
`shared/recordings/README.md`). Pure functions; the store and the replay wrapper do the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from riposte.inference.recording import canonical_json, normalize_value
from riposte.inference.upstream import JSON

TOOL_RESULT_TYPE = "llama_stack.apis.tools.tools.ToolInvocationResult"


@dataclass(frozen=True)
class ToolRecording:
    path: str
    test_id: str | None
    provider: str
    tool_name: str
    kwargs: JSON
    content: str
    key: str = field(compare=False)


def tool_match_key(provider: str, tool_name: str, kwargs: JSON) -> str:
    return canonical_json({"provider": provider, "tool_name": tool_name, "kwargs": normalize_value(kwargs)})


def parse_tool_recording(path: str, data: JSON) -> ToolRecording | None:
    """A tool-call recording from a file's JSON, or None when the file holds another kind."""
    request = data.get("request")
    if not isinstance(request, dict) or "body" in request:
        return None
    provider, tool_name, kwargs = request.get("provider"), request.get("tool_name"), request.get("kwargs")
    if not isinstance(provider, str) or not isinstance(tool_name, str) or not isinstance(kwargs, dict):
        return None
    body = (data.get("response") or {}).get("body")
    result = body.get("__data__") if isinstance(body, dict) else None
    if not isinstance(result, dict) or not isinstance(result.get("content"), str):
        return None
    return ToolRecording(path=path, test_id=data.get("test_id"), provider=provider, tool_name=tool_name,
                         kwargs=kwargs, content=result["content"], key=tool_match_key(provider, tool_name, kwargs))


def tool_recording_document(*, test_id: str | None, provider: str, tool_name: str, kwargs: JSON,
                            content: str) -> JSON:
    request: dict[str, Any] = {"provider": provider, "tool_name": tool_name, "kwargs": kwargs}
    result = {"content": content, "error_message": None, "error_code": None, "metadata": None}
    document: JSON = {
        "request": {"test_id": test_id, **request} if test_id else request,
        "response": {"body": {"__type__": TOOL_RESULT_TYPE, "__data__": result}, "is_streaming": False},
    }
    return {"test_id": test_id, **document} if test_id else document
