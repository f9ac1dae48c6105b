"""Pure translation for the two kinds of guard: request bodies out, verdicts in.

`moderations`: OpenAI's `POST /v1/moderations` (`{"model", "input"}` -> `results[].flagged`,
`results[].categories`). `llama_guard`: Meta's Llama Guard prompt format sent as one user message
over chat completions (as Llama Stack's own Llama Guard shield does, so any server that hosts the
model answers it, whatever its chat template); the answer is `safe`, or `unsafe` and a line of
category codes such as `S1,S10`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Stage = Literal["input", "output"]

# Llama Guard 3's hazard taxonomy (MLCommons), the default categories shown to the guard model.
LLAMA_GUARD_3_CATEGORIES: dict[str, str] = {
    "S1": "Violent Crimes.",
    "S2": "Non-Violent Crimes.",
    "S3": "Sex Crimes.",
    "S4": "Child Exploitation.",
    "S5": "Defamation.",
    "S6": "Specialized Advice.",
    "S7": "Privacy.",
    "S8": "Intellectual Property.",
    "S9": "Indiscriminate Weapons.",
    "S10": "Hate.",
    "S11": "Self-Harm.",
    "S12": "Sexual Content.",
    "S13": "Elections.",
    "S14": "Code Interpreter Abuse.",
}


class MalformedVerdict(ValueError):
    """The guard answered something that is not a verdict."""


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    categories: tuple[str, ...] = ()


SAFE = Verdict(flagged=False)


def moderation_body(model: str, text: str | list[str]) -> dict[str, Any]:
    return {"model": model, "input": text}


def moderation_verdict(answer: Mapping[str, Any]) -> Verdict:
    results = answer.get("results")
    if not isinstance(results, list) or not results or not all(isinstance(r, dict) for r in results):
        raise MalformedVerdict("the moderation answer has no results list")
    if not all(isinstance(r.get("flagged"), bool) for r in results):
        raise MalformedVerdict("a moderation result has no boolean 'flagged'")
    if not any(r["flagged"] for r in results):
        return SAFE
    categories: list[str] = []
    for result in results:
        for name, hit in (result.get("categories") or {}).items():
            if hit is True and name not in categories:
                categories.append(name)
    return Verdict(flagged=True, categories=tuple(categories))


def llama_guard_prompt(
    stage: Stage, text: str, categories: Mapping[str, str], user_text: str | None = None,
) -> str:
    """The task prompt: the input stage asks about the `User` message, the output stage about the
    `Agent` message (after the user's message it answers, when given)."""
    role = "User" if stage == "input" else "Agent"
    turns: list[tuple[str, str]] = [("User", text)] if stage == "input" else [("Agent", text)]
    if stage == "output" and user_text:
        turns.insert(0, ("User", user_text))
    listed = "\n".join(f"{code}: {description}" for code, description in categories.items())
    conversation = "\n\n".join(f"{speaker}: {said}" for speaker, said in turns)
    return (
        f"Task: Check if there is unsafe content in '{role}' messages in conversations according our safety "
        "policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{listed}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n{conversation}\n\n<END CONVERSATION>\n\n"
        f"Provide your safety assessment for ONLY THE LAST {role} message in the above conversation:\n"
        " - First line must read 'safe' or 'unsafe'.\n"
        " - If unsafe, a second line must include a comma-separated list of violated categories."
    )


def llama_guard_body(model: str, prompt: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0}


def llama_guard_verdict(completion: Mapping[str, Any], categories: Mapping[str, str]) -> Verdict:
    """Parse the guard's answer; each code is reported with its description, e.g. `S1 (Violent Crimes)`."""
    answer = _completion_text(completion)
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    if not lines or lines[0].lower() not in ("safe", "unsafe"):
        raise MalformedVerdict(f"the guard model answered {answer[:80]!r}, not 'safe' or 'unsafe'")
    if lines[0].lower() == "safe":
        return SAFE
    codes = [code.strip() for code in lines[1].split(",") if code.strip()] if len(lines) > 1 else []
    return Verdict(flagged=True, categories=tuple(_described(code, categories) for code in codes))


def _described(code: str, categories: Mapping[str, str]) -> str:
    description = categories.get(code.upper())
    return f"{code} ({description.rstrip('.')})" if description else code


def _completion_text(completion: Mapping[str, Any]) -> str:
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedVerdict("the guard model's answer has no choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise MalformedVerdict("the guard model's answer has no text")
    return content


def pieces(text: str, size: int, overlap: int) -> list[str]:
    """`text` in pieces of at most `size` characters, each starting `overlap` characters before
    the previous one ended, so that a phrase of up to `overlap + 1` characters is whole in one."""
    if len(text) <= size:
        return [text]
    step = size - overlap
    return [text[start:start + size] for start in range(0, len(text) - overlap, step)]


def context_tail(text: str, limit: int) -> str:
    """The end of the user's text, as context for an output check (the latest words matter most)."""
    return text if len(text) <= limit else text[-limit:]


def refusal_text(guard: str, stage: Stage, verdict: Verdict) -> str:
    what = "request" if stage == "input" else "answer"
    because = f" ({', '.join(verdict.categories)})" if verdict.categories else ""
    return f"I can't help with that: the {what} was flagged by the '{guard}' guardrail{because}."


def guarded_input_text(instructions: str | None, messages: Sequence[Mapping[str, Any]]) -> str:
    """What the input stage reads: the instructions, and the text of every message since the
    model's last answer that no guardrail refused (a refused turn's input is read again, so a
    chain cannot carry it past the guard by continuing)."""
    since: list[str] = []
    for message in reversed(messages):
        if message.get("role") == "assistant":
            if not message.get("refusal"):
                break
            continue
        text = _message_text(message.get("content"))
        if text:
            since.append(text)
    parts = ([instructions] if instructions else []) + list(reversed(since))
    return "\n\n".join(parts)


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content
                         if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""
