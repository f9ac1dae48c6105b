"""Pure functions over recordings: request normalization, match keys, and miss diagnostics.

The format is the one of `shared/recordings/` (see its README), so those files load unchanged.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from riposte.inference.upstream import JSON

CHUNK_TYPE = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
COMPLETION_TYPE = "openai.types.chat.chat_completion.ChatCompletion"
EMBEDDINGS_TYPE = "openai.types.create_embedding_response.CreateEmbeddingResponse"
MODERATION_TYPE = "openai.types.moderation_create_response.ModerationCreateResponse"

_LONG_DECIMAL = re.compile(r"-?\d+\.\d{4,}")
# Scores, attribute dicts and file ids in file_search tool text change from run to run while the
# question and the retrieved text do not, so matching ignores them (as the recorders did).
_SCORE = re.compile(r"score: -?[0-9.eE+-]+")
_ATTRIBUTES = re.compile(r", attributes: \{[^{}]*\}")
_DOCUMENT_ID = re.compile(r"document_id: file-[A-Za-z0-9_-]+")
_CITE_MARKER = re.compile(r"<\|file-[A-Za-z0-9_-]+\|>")


@dataclass(frozen=True)
class Recording:
    path: str
    test_id: str | None
    endpoint: str
    body: JSON
    response_body: Any
    is_streaming: bool
    key: str = field(compare=False)
    loose_key: str = field(compare=False)
    # The project that recorded it; None for recordings every project may replay (shipped ones,
    # and the default project's).
    project: str | None = field(default=None, compare=False)


def normalize_value(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, str):
        return _normalize_text(value)
    if isinstance(value, list):
        return [normalize_value(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize_value(v) for k, v in value.items()}
    return value


def _normalize_text(text: str) -> str:
    if "document_id" in text or "<|file-" in text:
        text = _SCORE.sub("score: _", text)
        text = _ATTRIBUTES.sub("", text)
        text = _DOCUMENT_ID.sub("document_id: _", text)
        text = _CITE_MARKER.sub("<|_|>", text)
    return _LONG_DECIMAL.sub(lambda m: f"{float(m.group()):.5f}", text)


def normalize_body(body: JSON) -> JSON:
    """The request body as matching sees it."""
    normalized: JSON = normalize_value(body)
    messages = normalized.get("messages")
    if isinstance(messages, list):
        normalized["messages"] = [_normalize_message(m) for m in messages]
    tools = normalized.get("tools")
    if isinstance(tools, list):
        normalized["tools"] = [_normalize_tool(t) for t in tools]
    return normalized


def _normalize_message(message: Any) -> Any:
    # Every chat API reads a string content and a single text part the same way, and the
    # recorded conversation turns used the list form for history. Matching treats them as equal
    # rather than making the engine reproduce that shape.
    if not isinstance(message, dict):
        return message
    if isinstance(message.get("tool_calls"), list):
        # Recorded tool calls in history carry the stream's `index`; chat APIs ignore it.
        calls = [{k: v for k, v in c.items() if k != "index"} if isinstance(c, dict) else c
                 for c in message["tool_calls"]]
        message = {**message, "tool_calls": calls}
    content = message.get("content")
    if isinstance(content, list) and len(content) == 1 and isinstance(content[0], dict):
        part = content[0]
        if part.get("type") == "text" and set(part) == {"type", "text"}:
            return {**message, "content": part["text"]}
    return message


def _normalize_tool(tool: Any) -> Any:
    # The recording system copied the whole tool dict into `function`, adding `"type"` and a null
    # `"strict"`. Riposte sends the standard chat tool definition; matching ignores the extras.
    if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
        return tool
    function = {k: v for k, v in tool["function"].items() if k != "type" and not (k == "strict" and v is None)}
    return {**tool, "function": function}


def match_key(endpoint: str, body: JSON) -> str:
    return canonical_json({"method": "POST", "endpoint": endpoint, "body": normalize_body(body)})


def loose_match_key(endpoint: str, body: JSON) -> str:
    """The key without `stream_options`, which older recordings lack."""
    return match_key(endpoint, {k: v for k, v in body.items() if k != "stream_options"})


def recording_hash(key: str, test_id: str | None, project: str | None = None) -> str:
    identity: dict[str, Any] = {"key": key, "test_id": test_id}
    if project:  # two projects recording the same request keep a file each
        identity["project"] = project
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()


def canonical_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def parse_recording(path: str, data: JSON) -> Recording | None:
    """Build a Recording from a file's JSON, or None for kinds the engine does not replay."""
    request = data.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("body"), dict):
        return None  # tool recordings (web search) have no HTTP body
    data = _apply_id_mapping(data)
    request = data["request"]
    endpoint = str(request.get("endpoint") or "")
    response = data.get("response") or {}
    body: JSON = request["body"]
    return Recording(
        path=path,
        test_id=data.get("test_id"),
        endpoint=endpoint,
        body=body,
        response_body=response.get("body"),
        is_streaming=bool(response.get("is_streaming")),
        key=match_key(endpoint, body),
        loose_key=loose_match_key(endpoint, body),
        project=data.get("project") if isinstance(data.get("project"), str) else None,
    )


def _apply_id_mapping(data: JSON) -> JSON:
    mapping = data.get("id_normalization_mapping") or {}
    if not mapping:
        return data
    text = orjson.dumps(data).decode()
    for placeholder, real in mapping.items():
        text = text.replace(real, placeholder)
    loaded: JSON = orjson.loads(text)
    return loaded


def unwrap(obj: Any) -> Any:
    """A recorded `{__type__, __data__}` object as its plain JSON data."""
    if isinstance(obj, dict) and "__data__" in obj:
        return obj["__data__"]
    return obj


def recording_document(
    *, test_id: str | None, url: str, endpoint: str, body: JSON, response_body: Any, is_streaming: bool, type_name: str,
    project: str | None = None,
) -> JSON:
    if is_streaming:
        wrapped: Any = [{"__type__": type_name, "__data__": chunk} for chunk in response_body]
    else:
        wrapped = {"__type__": type_name, "__data__": response_body}
    document: JSON = {
        "request": {
            "method": "POST",
            "url": url,
            "headers": {},
            "body": body,
            "endpoint": endpoint,
            "model": body.get("model"),
        },
        "response": {"body": wrapped, "is_streaming": is_streaming},
        "id_normalization_mapping": {},
    }
    if test_id:
        document = {"test_id": test_id, **document}
    if project:
        document = {"project": project, **document}
    return document


def describe_differences(wanted: Any, recorded: Any, path: str = "body", limit: int = 5) -> list[str]:
    """Human-readable paths where a request differs from a recording, at most `limit` of them."""
    found: list[str] = []
    _collect_differences(wanted, recorded, path, found, limit)
    return found


def _collect_differences(wanted: Any, recorded: Any, path: str, found: list[str], limit: int) -> None:
    if len(found) >= limit or wanted == recorded:
        return
    if isinstance(wanted, dict) and isinstance(recorded, dict):
        for key in sorted(set(wanted) | set(recorded)):
            if key not in recorded:
                found.append(f"{path}.{key}: only in the request")
            elif key not in wanted:
                found.append(f"{path}.{key}: only in the recording")
            else:
                _collect_differences(wanted[key], recorded[key], f"{path}.{key}", found, limit)
            if len(found) >= limit:
                return
        return
    if isinstance(wanted, list) and isinstance(recorded, list):
        if len(wanted) != len(recorded):
            found.append(f"{path}: {len(wanted)} entries requested, {len(recorded)} recorded")
        for index, (a, b) in enumerate(zip(wanted, recorded, strict=False)):
            _collect_differences(a, b, f"{path}[{index}]", found, limit)
        return
    found.append(f"{path}: requested {_short(wanted)}, recorded {_short(recorded)}")


def _short(value: Any, width: int = 80) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= width else text[: width - 3] + "..."
