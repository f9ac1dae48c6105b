"""The message order Chat Completions backends accept, whatever order the client sent items in.

Rules (OpenAI's, which vLLM, Ollama and llama.cpp templates share):
- the tool messages answering an assistant message's tool calls follow it directly, so a
  message that arrived between a call and its output moves after the outputs;
- an assistant message has content, tool calls or a refusal: an empty one is dropped (its
  reasoning, if any, rides on the next assistant message instead).

Pure: history and new input go through it together, since an output may answer a call that is
already in history.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]


def valid_chat_sequence(messages: list[Message]) -> list[Message]:
    answers = _tool_messages_by_call(messages)
    called = {call.get("id") for message in messages for call in message.get("tool_calls") or ()}
    placed: set[int] = set()
    ordered: list[Message] = []
    carried_reasoning: str | None = None
    for message in messages:
        if message.get("role") == "tool":
            if message.get("tool_call_id") not in called:
                ordered.append(message)  # answers no call we know of: validation reported it already
            continue
        if message.get("role") == "assistant":
            if _is_empty_assistant(message):
                carried_reasoning = message.get("reasoning_content") or carried_reasoning
                continue
            if carried_reasoning is not None and not message.get("reasoning_content"):
                message = {**message, "reasoning_content": carried_reasoning}
            carried_reasoning = None
        ordered.append(message)
        for call in message.get("tool_calls") or ():
            for answer in answers.get(call.get("id"), ()):
                if id(answer) not in placed:
                    placed.add(id(answer))
                    ordered.append(answer)
    return ordered


def _tool_messages_by_call(messages: list[Message]) -> dict[Any, list[Message]]:
    found: dict[Any, list[Message]] = {}
    for message in messages:
        if message.get("role") == "tool":
            found.setdefault(message.get("tool_call_id"), []).append(message)
    return found


def _is_empty_assistant(message: Message) -> bool:
    if message.get("tool_calls") or message.get("refusal"):
        return False
    content = message.get("content")
    if isinstance(content, str):
        return not content
    if isinstance(content, list):
        return not any(not isinstance(part, dict) or part.get("type") != "text" or part.get("text")
                       for part in content)
    return True
