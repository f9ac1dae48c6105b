"""The summary a compaction stores: written by the model, through the same upstream as the turn.

The conversation goes to the model as a plain transcript in one user message, under a system
prompt that asks for a summary an assistant can continue from. A transcript rather than the chat
messages themselves: every backend takes it (no tool schemas needed for old tool calls, no chat
template rules about roles), and it is one ordinary chat-completions call, so record/replay and
the scripted test upstream cover it like any other. The oldest lines are left out when the
transcript would not fit the model's window together with the summary.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import orjson

from riposte.engine.translate import Message
from riposte.engine.usage import Usage, count_tokens, estimated_usage_off_loop, reported_usage, usage_from_chunk
from riposte.errors import UpstreamError
from riposte.inference.router import Route

SUMMARY_PROMPT = (
    "You compact conversations between a user and an AI assistant. The user message holds the transcript "
    "of one. Write a summary from which the assistant can continue the conversation without the "
    "transcript: the user's goals, instructions and preferences, facts and numbers that were "
    "established, decisions made, results of tool calls that still matter, open questions, and what "
    "was about to happen next. Be concise and concrete. Write only the summary, with no preamble."
)
# Tokens kept free for the prompt, the transcript's framing and chat formatting.
_FRAMING_TOKENS = 256


class CallWatcher(Protocol):
    """Sees the summary's upstream call, as a turn's observer and trace see its model calls."""

    def started(self, body: dict[str, Any]) -> None: ...

    def chunk(self) -> None: ...

    def answered(self, body: dict[str, Any], text: str, finish_reason: str | None,
                 usage: dict[str, Any] | None) -> None: ...

    def failed(self, body: dict[str, Any], error: BaseException) -> None: ...


@dataclass(frozen=True)
class Summary:
    text: str
    usage: Usage


async def summarize(route: Route, messages: list[Message], window: int, max_tokens: int,
                    options: dict[str, Any] | None = None, watcher: CallWatcher | None = None) -> Summary:
    """Ask the model for a summary of `messages`; `options` are more chat-completions fields."""
    budget = max(1, window - max_tokens - _FRAMING_TOKENS)
    transcript = await anyio.to_thread.run_sync(transcript_within, messages, budget)
    chat = [{"role": "system", "content": SUMMARY_PROMPT},
            {"role": "user", "content": f"<transcript>\n{transcript}\n</transcript>"}]
    body: dict[str, Any] = {"model": route.upstream_model, "messages": chat, "stream": True,
                            "stream_options": {"include_usage": True},
                            route.provider.max_tokens_param: max_tokens, **(options or {})}
    text, usage = await _streamed_text(route, body, watcher)
    if not text.strip():
        raise UpstreamError("the model wrote an empty summary, so the conversation could not be compacted")
    return Summary(text=text.strip(), usage=usage or await estimated_usage_off_loop(chat, text, ""))


async def _streamed_text(route: Route, body: dict[str, Any],
                         watcher: CallWatcher | None) -> tuple[str, Usage | None]:
    pieces: list[str] = []
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    if watcher is not None:
        watcher.started(body)
    try:
        async with aclosing(route.upstream.stream_chat(body)) as batches:
            async for batch in batches:
                for chunk in batch:
                    if watcher is not None:
                        watcher.chunk()
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or ():
                        pieces.append((choice.get("delta") or {}).get("content") or "")
                        finish_reason = choice.get("finish_reason") or finish_reason
        if finish_reason is None:
            raise UpstreamError("upstream stream ended without a finish_reason: the summary was cut short")
    except BaseException as exc:
        if watcher is not None:
            watcher.failed(body, exc)
        raise
    if watcher is not None:
        watcher.answered(body, "".join(pieces), finish_reason, usage)
    reported = reported_usage(usage) if isinstance(usage, dict) else None
    return "".join(pieces), usage_from_chunk(reported) if reported else None


def transcript_within(messages: list[Message], budget: int) -> str:
    """The transcript's newest lines that fit in `budget` tokens (at least the newest one)."""
    lines = [line for line in (_transcript_line(message) for message in messages) if line]
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        used += count_tokens(line) + 1
        if kept and used > budget:
            break
        kept.append(line)
    return "\n\n".join(reversed(kept))


def _transcript_line(message: Message) -> str:
    role = str(message.get("role", ""))
    text = _content_text(message.get("content"))
    if role == "system":
        return f"[Instructions to the assistant]: {text}"
    if role == "tool":
        return f"[tool result for {message.get('tool_call_id')}]: {text}"
    speaker = "User" if role in ("user", "developer") else "Assistant"
    parts = [f"{speaker}: {text}"] if text else []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        parts.append(f"[Assistant called tool {function.get('name')} ({call.get('id')}) with "
                     f"{function.get('arguments')}]")
    return "\n".join(parts)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(_part_text(part) for part in content if isinstance(part, dict))


def _part_text(part: dict[str, Any]) -> str:
    if part.get("type") == "text":
        return str(part.get("text", ""))
    if part.get("type") == "image_url":
        return "[image]"
    if part.get("type") == "file":
        return f"[file {(part.get('file') or {}).get('filename') or ''}]".replace(" ]", "]")
    return orjson.dumps(part).decode()[:200]
