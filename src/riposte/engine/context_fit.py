"""The stage before a turn's first model call that makes its input fit: compaction, then truncation.

1. `context_management: [{"type": "compaction", "compact_threshold": N}]`: when the rendered
   input (instructions, history, new input, tool definitions: what `POST
   /v1/responses/input_tokens` counts) is over N tokens, the model writes a summary of the
   conversation (engine/summarize.py) and the turn goes on from the summary and the latest
   exchange (from the last user message on), kept verbatim. The turn outputs a `compaction`
   item first, which later turns expand back into the summary. Preparing a turn only decides
   this (`may_compact=False`); the summary call runs once the turn has started.
2. The input must then fit the model's context window (engine/context_windows.py), less the
   `max_output_tokens` the request reserves. `truncation: "auto"` drops the oldest messages to
   fit: a tool call goes together with its results, system and developer messages stay, and the
   newest message always stays. `"disabled"` (the default) answers 400
   `context_length_exceeded` instead, before any upstream call. The same check runs before each
   later model call of the turn (after tool outputs): truncating what that call sends, or failing
   the response with `context_length_exceeded`.

Counting is free when it cannot matter: a byte bound settles most requests without tokenizing.
With neither feature asked for and an input within the window, nothing here changes the request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import anyio

from riposte.engine.compaction_items import SUMMARY_HEADER
from riposte.engine.context_windows import ContextSettings
from riposte.engine.reasoning_context import reasoning_in_context
from riposte.engine.request import CreateResponseRequest
from riposte.engine.summarize import CallWatcher, summarize
from riposte.engine.translate import Message
from riposte.engine.usage import (
    Usage,
    count_input_tokens,
    count_input_tokens_off_loop,
    input_tokens_upper_bound,
    message_tokens,
)
from riposte.errors import InvalidRequestError
from riposte.inference.router import Route

# Without a compact_threshold, compaction starts at this share of the window.
DEFAULT_THRESHOLD_SHARE = 0.8


def upstream_messages(request: CreateResponseRequest, conversation: list[Message]) -> list[Message]:
    """The messages a model call sends: the instructions first, then the conversation."""
    messages = reasoning_in_context(conversation, (request.reasoning or {}).get("context"))
    if request.instructions:
        return [{"role": "system", "content": request.instructions}, *messages]
    return list(messages)


def compact_threshold(request: CreateResponseRequest, window: int) -> int | None:
    """The token count over which this request compacts, or None; a bad entry is a 400 naming it."""
    threshold: int | None = None
    for index, entry in enumerate(request.context_management or ()):
        param = f"context_management[{index}]"
        if not isinstance(entry, dict) or entry.get("type") != "compaction":
            raise InvalidRequestError("The only context management entry type is 'compaction'.",
                                      param=f"{param}.type", code="invalid_value")
        if set(entry) - {"type", "compact_threshold"}:
            unknown = sorted(set(entry) - {"type", "compact_threshold"})[0]
            raise InvalidRequestError(f"Unknown parameter '{unknown}'.", param=f"{param}.{unknown}",
                                      code="unknown_parameter")
        value = entry.get("compact_threshold")
        if value is None:
            value = int(window * DEFAULT_THRESHOLD_SHARE)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidRequestError("compact_threshold must be a positive integer (tokens).",
                                      param=f"{param}.compact_threshold", code="invalid_value")
        threshold = value if threshold is None else min(threshold, value)
    return threshold


@dataclass(frozen=True)
class FitRequest:
    request: CreateResponseRequest
    route: Route
    conversation: list[Message]
    tools: list[dict[str, Any]]
    window: int
    settings: ContextSettings
    # Who sees the summary call (the turn's observer and trace), if anyone.
    watcher: CallWatcher | None = None


@dataclass(frozen=True)
class Fitted:
    """The conversation to send instead (None: unchanged) and the summary written, if any."""

    conversation: list[Message] | None = None
    summary: str | None = None
    summary_usage: Usage | None = None
    # Over the threshold, but compaction was not allowed yet: run again with `may_compact`.
    compaction_due: bool = False


async def fit_context(fit: FitRequest, *, may_compact: bool = True) -> Fitted:
    """Compact (when over the threshold and `may_compact`), then truncate or refuse."""
    threshold = compact_threshold(fit.request, fit.window)
    conversation, summary, usage = fit.conversation, None, None
    if threshold is not None and await _tokens(fit, conversation, threshold) > threshold:
        if not may_compact:
            return Fitted(compaction_due=True)
        written = await summarize(fit.route, upstream_messages(fit.request, conversation), fit.window,
                                  fit.settings.summary_max_tokens, watcher=fit.watcher)
        summary, usage = written.text, written.usage
        conversation = [summary_chat_message(summary), *latest_exchange(conversation)]
    conversation = await within_window(replace(fit, conversation=conversation))
    if conversation is fit.conversation:
        return Fitted()
    return Fitted(conversation=conversation, summary=summary, summary_usage=usage)


async def within_window(fit: FitRequest) -> list[Message]:
    """The window step alone: `fit.conversation` itself when it fits, else truncated
    (`truncation: "auto"`) or the `context_length_exceeded` error. Also run before each later
    model call of a turn, whose tool outputs may have pushed the input past the window."""
    limit = fit.window - (fit.request.max_output_tokens or 0)
    tokens = await _tokens(fit, fit.conversation, limit)
    if tokens <= limit:
        return fit.conversation
    if fit.request.truncation != "auto":
        raise context_length_exceeded(tokens, limit, fit.window)
    return await anyio.to_thread.run_sync(truncated, fit.request, fit.tools, fit.conversation, fit.window)


def summary_chat_message(summary: str) -> Message:
    return {"role": "user", "content": f"{SUMMARY_HEADER}\n\n{summary}"}


def latest_exchange(conversation: list[Message]) -> list[Message]:
    """From the last user message on: the exchange in progress, which compaction keeps verbatim."""
    last_user = max((i for i, m in enumerate(conversation) if m.get("role") == "user"), default=len(conversation))
    return conversation[last_user:]


async def _tokens(fit: FitRequest, conversation: list[Message], limit: int) -> int:
    """The rendered input's tokens, exactly as input_tokens counts them; or, when even the byte
    bound is within `limit`, that bound (the answer to "is it over?" is the same)."""
    messages = upstream_messages(fit.request, conversation)
    bound = input_tokens_upper_bound(messages, fit.tools)
    if bound <= limit:
        return bound
    return await count_input_tokens_off_loop(messages, fit.tools)


def truncated(request: CreateResponseRequest, tools: list[dict[str, Any]], conversation: list[Message],
              window: int) -> list[Message]:
    """The conversation without its oldest droppable groups, so that it fits the window less the
    reserved output; counted as input_tokens counts it. Blocking: run it off the event loop."""
    limit = window - (request.max_output_tokens or 0)
    groups = _groups(conversation)
    costs = [sum(message_tokens(m) for m in group) for group in groups]
    total = count_input_tokens(upstream_messages(request, []), tools) + sum(costs)
    # Oldest first; the last group (the exchange in progress) always stays.
    droppable = [index for index in range(len(groups) - 1) if _droppable(groups[index])]
    dropped = [False] * len(groups)
    taken = 0  # how many of `droppable` are dropped

    def drop_until(estimate: int) -> None:
        nonlocal total, taken
        while total > estimate and taken < len(droppable):
            index = droppable[taken]
            dropped[index], total, taken = True, total - costs[index], taken + 1

    drop_until(limit)
    while True:
        result = [m for index, group in enumerate(groups) if not dropped[index] for m in group]
        tokens = count_input_tokens(upstream_messages(request, result), tools)
        if tokens <= limit:
            return result
        if taken == len(droppable):
            raise context_length_exceeded(tokens, limit, window, truncated=True)
        # Sampled counts of long texts are estimates, and the per-message ones add up differently
        # from a count of the whole: drop as many more estimated tokens as the real count is over
        # (at least one group), and count again. One group per count made 25k short messages take
        # minutes.
        before = taken
        drop_until(total - (tokens - limit))
        if taken == before:
            drop_until(total - 1)


def _groups(conversation: list[Message]) -> list[list[Message]]:
    """Messages in droppable units: an assistant message with tool calls and the results after it
    are one unit (a call is never split from its output); every other message is its own."""
    groups: list[list[Message]] = []
    for message in conversation:
        if message.get("role") == "tool" and groups and _answers(groups[-1], message):
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def _answers(group: list[Message], tool_message: Message) -> bool:
    calls = {call.get("id") for call in group[0].get("tool_calls") or ()}
    return tool_message.get("tool_call_id") in calls


def _droppable(group: list[Message]) -> bool:
    return group[0].get("role") not in ("system", "developer")


def context_length_exceeded(tokens: int, limit: int, window: int, truncated: bool = False) -> InvalidRequestError:
    reserved = window - limit
    detail = f" ({reserved} of them reserved by max_output_tokens)" if reserved else ""
    hint = ("Even with the oldest items dropped, the newest message and the system messages do not fit."
            if truncated else "Shorten the input, set truncation to 'auto' to drop the oldest items, or compact "
            "the conversation (context_management or POST /v1/responses/compact).")
    return InvalidRequestError(
        f"The input is {tokens} tokens, over the {limit} that the model's context window of {window} "
        f"tokens{detail} leaves for it. {hint}",
        param="input", code="context_length_exceeded",
    )
