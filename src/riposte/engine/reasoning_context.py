"""`reasoning.context`: which earlier reasoning goes back to the model.

Reasoning rides on assistant messages as `reasoning_content`. `all_turns` keeps all of it;
`current_turn` keeps only what the model produced since the last user message (the reasoning
behind this turn's own tool calls), as OpenAI's pre-gpt-5.6 models do. `auto` (or no value)
keeps all of it: it is what Riposte always sent, so recordings keep replaying.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]


def reasoning_in_context(messages: list[Message], context: str | None) -> list[Message]:
    if context != "current_turn":
        return messages
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    return [_without_reasoning(m) if i < last_user else m for i, m in enumerate(messages)]


def _without_reasoning(message: Message) -> Message:
    if "reasoning_content" not in message:
        return message
    return {k: v for k, v in message.items() if k != "reasoning_content"}
