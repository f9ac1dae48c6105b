"""Pure functions from stored data to what the inspector's templates show. No I/O here, so each
page's shape is testable without a server and rendering cost is easy to measure (bench/ui_render.py)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from riposte.engine.turn_trace import full_requests
from riposte.ui.cost import cost_text, response_cost
from riposte.ui.settings import ModelPrice

Item = dict[str, Any]
Step = dict[str, Any]
View = dict[str, Any]


def when(timestamp: float | int | None) -> str:
    if timestamp is None:
        return ""
    moment = datetime.datetime.fromtimestamp(float(timestamp), tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def text_of(content: Any) -> str:
    """The readable text of an item's content (a string, or a list of text-like parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(str(part.get("text") or part.get("refusal") or part.get("image_url")
                                 or part.get("filename") or f"[{part.get('type', 'part')}]"))
        return "\n".join(parts)
    return "" if content is None else str(content)


# ------------------------------------------------------------------------------------------ list


def response_row(response: Mapping[str, Any], prices: Mapping[str, ModelPrice]) -> View:
    usage = response.get("usage") or {}
    return {
        "id": response["id"], "model": response.get("model", ""), "status": response.get("status", ""),
        "created": when(response.get("created_at")), "preview": _preview(response.get("output") or []),
        "conversation": (response.get("conversation") or {}).get("id"),
        "previous": response.get("previous_response_id"),
        "tokens": (usage.get("input_tokens"), usage.get("output_tokens")) if usage else None,
        "cost": cost_text(response_cost(str(response.get("model", "")), usage, dict(prices))),
        "error": (response.get("error") or {}).get("message"),
    }


def _preview(output: Sequence[Item], width: int = 120) -> str:
    for item in output:
        if item.get("type") == "message":
            text = text_of(item.get("content")).strip()
            if text:
                return text if len(text) <= width else text[: width - 1] + "…"
    kinds = sorted({str(item.get("type")) for item in output})
    return ", ".join(kinds)


# -------------------------------------------------------------------------------------- timeline


@dataclass
class Sources:
    """Chunks the turn's file searches found, by file id, so citations can link to them."""

    anchors: dict[str, str] = field(default_factory=dict)

    def anchor_for(self, file_id: str | None) -> str | None:
        return self.anchors.get(file_id or "")


def timeline(response: Mapping[str, Any], input_items: Sequence[Item], steps: Sequence[Step] | None,
             prices: Mapping[str, ModelPrice], ancestors: Sequence[str] = (), children: Sequence[str] = (),
             streaming: Mapping[str, str] | None = None, history: list[Any] | None = None) -> View:
    """`streaming`: what the running turn's current upstream call has streamed so far, if it runs here.
    `history`: the stored messages the trace names (turn_trace.history_reference), for whole bodies."""
    sources = Sources()
    bodies = full_requests(steps or [], history)
    step_views = [step_view(index, step, sources, bodies[index - 1])
                  for index, step in enumerate(steps or [], start=1)]
    usage = response.get("usage") or None
    output = [output_item_view(item, sources) for item in response.get("output") or []]
    return {
        "id": response["id"], "model": response.get("model", ""), "status": response.get("status", ""),
        "created": when(response.get("created_at")), "completed": when(response.get("completed_at")),
        "instructions": text_of(response.get("instructions")),
        "error": response.get("error"), "incomplete": response.get("incomplete_details"),
        "usage": usage, "cost": cost_text(response_cost(str(response.get("model", "")), usage, dict(prices))),
        "conversation": (response.get("conversation") or {}).get("id"),
        "input_items": [item_view(item) for item in input_items],
        "traced": steps is not None, "steps": step_views, "output": output,
        "ancestors": list(ancestors), "children": list(children),
        "previous": response.get("previous_response_id"),
        "recordings": [r for view in step_views for r in view.get("recordings", [])],
        "misses": [view for view in step_views if (view.get("error") or {}).get("closest_recording")],
        "running": response.get("status") in ("in_progress", "queued"),
        "streaming": dict(streaming) if streaming and response.get("status") == "in_progress" else None,
    }


def step_view(index: int, step: Step, sources: Sources, request: Mapping[str, Any]) -> View:
    """One step; `request` is an upstream call's whole request body (turn_trace.full_requests)."""
    if step.get("kind") == "tool_call":
        return _tool_step(index, step, sources)
    if step.get("kind") == "guardrail_check":
        return _guardrail_step(index, step)
    answer = step.get("answer") or {}
    message = answer.get("message") or {}
    return {
        "kind": "upstream_call", "index": index, "anchor": f"step-{index}",
        "started": when(step.get("started_at")), "duration_ms": step.get("duration_ms"),
        "first_chunk_ms": step.get("first_chunk_ms"), "model": request.get("model"),
        "message_count": len(request.get("messages") or []), "tool_count": len(request.get("tools") or []),
        "request_json": pretty_json(request),
        "messages": [_message_view(m) for m in request.get("messages") or []],
        "text": message.get("content") or "", "reasoning": message.get("reasoning_content") or "",
        "refusal": message.get("refusal") or "",
        "tool_calls": [{"name": (c.get("function") or {}).get("name"), "id": c.get("id"),
                        "arguments": (c.get("function") or {}).get("arguments")}
                       for c in message.get("tool_calls") or []],
        "finish_reason": answer.get("finish_reason"), "usage": answer.get("usage"),
        "answer_json": pretty_json(answer) if answer else "",
        "error": step.get("error"), "recordings": step.get("recordings") or [],
    }


def _message_view(message: Mapping[str, Any]) -> View:
    calls = message.get("tool_calls") or []
    text = text_of(message.get("content"))
    if calls:
        text = (text + "\n" if text else "") + "\n".join(
            f"→ {(c.get('function') or {}).get('name')}({(c.get('function') or {}).get('arguments')})" for c in calls)
    return {"role": message.get("role", ""), "text": text, "tool_call_id": message.get("tool_call_id")}


def chunk_anchor(store_id: str, chunk_index: int) -> str:
    return f"chunk-{store_id}-{chunk_index}"


def _tool_step(index: int, step: Step, sources: Sources) -> View:
    found = []
    for number, source in enumerate(step.get("sources") or [], start=1):
        anchor = f"source-{index}-{number}"
        file_id = source.get("file_id")
        if isinstance(file_id, str):
            sources.anchors.setdefault(file_id, anchor)
        chunk_href = None
        if isinstance(file_id, str) and source.get("vector_store_id") and source.get("chunk_index") is not None:
            chunk = chunk_anchor(str(source["vector_store_id"]), int(source["chunk_index"]))
            chunk_href = f"/ui/files/{file_id}#{chunk}"
        found.append({**source, "anchor": anchor, "chunk_href": chunk_href,
                      "score_text": f"{float(source.get('score') or 0):.4f}"})
    return {
        "kind": "tool_call", "index": index, "anchor": f"step-{index}", "name": step.get("name"),
        "tool_type": step.get("tool_type"), "call_id": step.get("call_id"), "arguments": step.get("arguments"),
        "started": when(step.get("started_at")), "duration_ms": step.get("duration_ms"),
        "failed": bool(step.get("failed")), "status": step.get("status"), "error": step.get("error"),
        "result": step.get("result") or "", "result_truncated": bool(step.get("result_truncated")),
        "sources": found,
    }


def _guardrail_step(index: int, step: Step) -> View:
    """A guardrail's check. A flagged text appears here and nowhere else in the timeline (the
    answer and the output hold only what went out), marked as withheld from the client."""
    text = str(step.get("text") or "")
    return {
        "kind": "guardrail_check", "index": index, "anchor": f"step-{index}", "guard": step.get("guard"),
        "guard_type": step.get("guard_type"), "stage": step.get("stage"), "started": when(step.get("started_at")),
        "duration_ms": step.get("duration_ms"), "outcome": step.get("outcome"),
        "flagged": step.get("outcome") == "flagged", "failed": str(step.get("outcome", "")).startswith("failed"),
        "categories": ", ".join(step.get("categories") or ()), "failure": step.get("error"), "text": text,
        "text_cut": int(step.get("text_chars") or 0) - len(text),
    }


def item_view(item: Mapping[str, Any]) -> View:
    """Any input or output item: a role and text where it has them, its JSON otherwise."""
    kind = str(item.get("type") or ("message" if "role" in item else "item"))
    view: View = {"type": kind, "id": item.get("id"), "role": item.get("role"), "status": item.get("status"),
                  "json": pretty_json(item)}
    if kind == "message":
        view["text"] = text_of(item.get("content"))
    elif kind in ("function_call", "custom_tool_call"):
        view["text"] = f"{item.get('name')}({item.get('arguments') or item.get('input') or ''})"
    elif kind in ("function_call_output", "custom_tool_call_output"):
        view["text"] = text_of(item.get("output"))
    elif kind == "reasoning":
        view["text"] = "\n".join(text_of(part.get("text")) for part in
                                 [*(item.get("summary") or []), *(item.get("content") or [])] if isinstance(part, dict))
    elif kind == "file_search_call":
        view["text"] = "queries: " + "; ".join(str(q) for q in item.get("queries") or [])
    else:
        view["text"] = ""
    return view


def output_item_view(item: Mapping[str, Any], sources: Sources) -> View:
    view = item_view(item)
    if view["type"] == "message":
        view["parts"] = [_part_view(part, sources) for part in item.get("content") or [] if isinstance(part, dict)]
    return view


def _part_view(part: Mapping[str, Any], sources: Sources) -> View:
    if part.get("type") == "refusal":
        return {"type": "refusal", "segments": [{"text": str(part.get("refusal") or "")}], "citations": []}
    text = str(part.get("text") or "")
    annotations = [a for a in part.get("annotations") or [] if isinstance(a, dict)]
    citations = []
    for number, annotation in enumerate(annotations, start=1):
        kind = annotation.get("type")
        citation: View = {"number": number, "type": kind, "title": annotation.get("filename") or annotation.get("title")
                          or annotation.get("url") or annotation.get("file_id"), "file_id": annotation.get("file_id")}
        if kind == "url_citation":
            citation["href"] = annotation.get("url")
        elif annotation.get("file_id"):
            anchor = sources.anchor_for(annotation.get("file_id"))
            citation["href"] = f"#{anchor}" if anchor else None
            citation["file_href"] = f"/ui/files/{annotation.get('file_id')}"
        position = annotation.get("index", annotation.get("end_index"))
        citation["position"] = int(position) if isinstance(position, int) else len(text)
        citations.append(citation)
    return {"type": part.get("type"), "segments": _segments(text, citations), "citations": citations}


def _segments(text: str, citations: Sequence[View]) -> list[View]:
    """The text cut at each citation's position, each cut followed by its marker."""
    segments: list[View] = []
    start = 0
    for citation in sorted(citations, key=lambda c: c["position"]):
        position = max(start, min(citation["position"], len(text)))
        segments.append({"text": text[start:position], "citation": citation})
        start = position
    segments.append({"text": text[start:]})
    return segments


# ---------------------------------------------------------------------------------- conversations


def conversation_items(items: Sequence[Item], added_by: Mapping[str, str]) -> list[View]:
    views = []
    for position, item in enumerate(items, start=1):
        view = item_view(item)
        view["position"] = position
        view["added_by"] = added_by.get(str(item.get("id")))
        views.append(view)
    return views


# ------------------------------------------------------------------------------------ recordings


def flattened(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, JSON of a scalar) for every leaf, in document order."""
    if isinstance(value, dict) and value:
        return [pair for key, inner in value.items() for pair in flattened(inner, f"{path}.{key}" if path else key)]
    if isinstance(value, list) and value:
        return [pair for index, inner in enumerate(value) for pair in flattened(inner, f"{path}[{index}]")]
    return [(path or "(body)", orjson.dumps(value).decode())]


def compared(requested: Any, recorded: Any) -> list[View]:
    """Rows of both bodies side by side by path; `differs` marks what keeps them from matching."""
    wanted = dict(flattened(requested))
    have = dict(flattened(recorded))
    paths = list(wanted) + [path for path in have if path not in wanted]
    return [{"path": path, "requested": wanted.get(path), "recorded": have.get(path),
             "differs": wanted.get(path) != have.get(path)} for path in paths]
