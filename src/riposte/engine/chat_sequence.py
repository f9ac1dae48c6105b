"""The message order Chat Completions backends accept, whatever order the client sent items in.

Rules (OpenAI's, which vLLM, Ollama and llama.cpp templates share):
- the tool messages answering an assistant message's tool calls follow it directly, so a
  message that arrived between a call and its output moves after the outputs;
- an assistant message has content, tool calls, a refusal or reasoning: one with none of them
  (a turn that produced nothing) is dropped. Reasoning alone is kept: reasoning backends read it.

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
    for message in messages:
        if message.get("role") == "tool":
            if message.get("tool_call_id") not in called:
                ordered.append(message)  # answers no call we know of: validation reported it already
            continue
        if message.get("role") == "assistant" and _is_empty_assistant(message):
            continue
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
    if message.get("tool_calls") or message.get("refusal") or message.get("reasoning_content"):
        return False
    content = message.get("content")
    if isinstance(content, str):
        return not content
    if isinstance(content, list):
        return not any(not isinstance(part, dict) or part.get("type") != "text" or part.get("text")
                       for part in content)
    return True
