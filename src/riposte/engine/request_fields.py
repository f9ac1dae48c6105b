"""How Riposte handles each field of `POST /v1/responses`: the one table behind the README's.

Every field of openai-python's `ResponseCreateParams` is here (a test walks the SDK's type, so a
new SDK field fails the suite until it is decided), plus Riposte's own extensions. Each field is
honoured, kept as client bookkeeping (stored and echoed), or rejected with a 400 that names it
and gives the reason below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from riposte.errors import InvalidRequestError


class Handling(str, Enum):
    HONOURED = "honoured"
    BOOKKEEPING = "stored and echoed"
    PARTLY = "honoured, some values 400"
    REJECTED = "400"


@dataclass(frozen=True)
class FieldHandling:
    handling: Handling
    how: str


REQUEST_FIELDS: dict[str, FieldHandling] = {
    "access_programs": FieldHandling(
        Handling.REJECTED, "OpenAI's domain-specific access programs do not exist on a self-hosted server"),
    "background": FieldHandling(
        Handling.HONOURED, "queued, run by a worker of any replica; poll, cancel, resume the stream; needs store"),
    "background_options": FieldHandling(Handling.REJECTED, "background runs have no options to configure"),
    "client_metadata": FieldHandling(Handling.BOOKKEEPING, "string map (Codex's ids); never sent upstream"),
    "context_management": FieldHandling(
        Handling.HONOURED, "`[{type: compaction, compact_threshold}]`: over the threshold the model summarizes the "
        "conversation first and a `compaction` item opens the output"),
    "conversation": FieldHandling(Handling.HONOURED, "history from the conversation; the turn is appended"),
    "guardrails": FieldHandling(
        Handling.HONOURED, "Riposte extension: moderation of input and output by the named server guardrails "
        "(added to the server default); unknown names 400"),
    "image": FieldHandling(Handling.REJECTED, "request-level image options need an image tool, which Riposte lacks"),
    "include": FieldHandling(
        Handling.PARTLY, "`file_search_call.results`, `message.input_image.image_url` (always kept), "
        "`message.output_text.logprobs`, `reasoning.encrypted_content`, `web_search_call.action.sources`; "
        "other values 400"),
    "input": FieldHandling(Handling.HONOURED, "string or items, translated to chat messages"),
    "instructions": FieldHandling(Handling.HONOURED, "system message first; never inherited through a chain"),
    "max_infer_iters": FieldHandling(Handling.HONOURED, "Riposte extension: upstream calls per turn (1–100)"),
    "max_output_tokens": FieldHandling(
        Handling.HONOURED, "upstream `max_completion_tokens` (or the provider's `max_tokens_param`)"),
    "max_tool_calls": FieldHandling(
        Handling.HONOURED, "caps server-side tool calls; further calls are answered as not run"),
    "metadata": FieldHandling(Handling.BOOKKEEPING, "16 keys, 64/512 chars; never sent upstream"),
    "model": FieldHandling(Handling.HONOURED, "`provider/model` picks the provider"),
    "moderation": FieldHandling(
        Handling.REJECTED, "OpenAI's moderated completions (scores in `response.moderation`) are not implemented; "
        "the `guardrails` extension moderates input and output with configured guards"),
    "parallel_tool_calls": FieldHandling(Handling.HONOURED, "upstream `parallel_tool_calls` when tools are sent"),
    "previous_response_id": FieldHandling(Handling.HONOURED, "history from the stored chain"),
    "prompt": FieldHandling(Handling.REJECTED, "Riposte stores no prompt templates"),
    "prompt_cache_key": FieldHandling(Handling.HONOURED, "upstream `prompt_cache_key`"),
    "prompt_cache_options": FieldHandling(Handling.REJECTED, "explicit cache breakpoints have no chat equivalent"),
    "prompt_cache_retention": FieldHandling(
        Handling.BOOKKEEPING, "deprecated OpenAI cache hint: echoed, not sent upstream"),
    "reasoning": FieldHandling(
        Handling.PARTLY, "`effort` → upstream `reasoning_effort`; `context` chooses which earlier reasoning "
        "goes upstream; `summary`/`generate_summary` echoed (items carry the full reasoning text, no "
        "summary); `mode` other than `standard` 400"),
    "safety_identifier": FieldHandling(Handling.HONOURED, "upstream `safety_identifier`"),
    "service_tier": FieldHandling(Handling.HONOURED, "upstream `service_tier`"),
    "shields": FieldHandling(Handling.HONOURED, "alias of `guardrails` (the seed system's extra-body field)"),
    "store": FieldHandling(Handling.HONOURED, "`false` keeps the response out of the store"),
    "stream": FieldHandling(Handling.HONOURED, "SSE with the full event grammar"),
    "stream_options": FieldHandling(
        Handling.HONOURED, "only with `stream: true`; no obfuscation padding is ever added"),
    "temperature": FieldHandling(Handling.HONOURED, "upstream `temperature`"),
    "text": FieldHandling(
        Handling.HONOURED, "`format` → upstream `response_format` (none for the default); `verbosity` → "
        "upstream `verbosity` where the provider has `supports_verbosity`, else echoed only"),
    "tool_choice": FieldHandling(Handling.HONOURED, "upstream `tool_choice`"),
    "tools": FieldHandling(Handling.HONOURED, "function tools upstream; server tools run by Riposte"),
    "top_logprobs": FieldHandling(Handling.HONOURED, "upstream `logprobs` + `top_logprobs`"),
    "top_p": FieldHandling(Handling.HONOURED, "upstream `top_p`"),
    "truncation": FieldHandling(
        Handling.HONOURED, "`auto` drops the oldest messages to fit the model's context window (calls stay with "
        "their outputs); `disabled` (default) is a 400 `context_length_exceeded` before any upstream call"),
    "user": FieldHandling(Handling.HONOURED, "upstream `user`"),
}

# Riposte's own fields, not in the SDK's params.
EXTENSIONS = frozenset({"client_metadata", "guardrails", "max_infer_iters", "shields"})


def reject_unsupported_fields(present: set[str]) -> None:
    """A 400 naming the first rejected field the request sets, with the reason from the table."""
    for name in sorted(present):
        handling = REQUEST_FIELDS.get(name)
        if handling is not None and handling.handling is Handling.REJECTED:
            raise InvalidRequestError(f"'{name}' is not supported by this server: {handling.how}.", param=name,
                                      code="unsupported_parameter")


def readme_table() -> str:
    """The README's table, generated so that a test keeps the two identical."""
    rows = ["| field | handling | how |", "| --- | --- | --- |"]
    rows += [f"| `{name}` | {field.handling.value} | {field.how} |" for name, field in sorted(REQUEST_FIELDS.items())]
    return "\n".join(rows) + "\n"
