"""The request-field walk: every field of the installed openai SDK's `ResponseCreateParams` has a
decided handling (src/riposte/engine/request_fields.py), the README's table says the same, and a
live server does what the table says for each field.

A new SDK release that adds a field fails `test_every_sdk_field_has_a_decided_handling` until the
field is honoured, kept as bookkeeping, or rejected with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from openai.types.responses import Response
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)
from openai.types.responses.response_text_config_param import ResponseTextConfigParam
from openai.types.shared_params.reasoning import Reasoning

from riposte.config import ProviderConfig
from riposte.engine.request import SUPPORTED_INCLUDES, CreateResponseRequest, ReasoningParam, TextParam
from riposte.engine.request_fields import EXTENSIONS, REQUEST_FIELDS, Handling, readme_table
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.conftest import REPO, server_factory
from tests.fakes.scripted_upstream import ScriptedUpstream, reasoning_reply, text_reply
from tests.integration.sdk import raw_stream

TOOLS = [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]


def keys(typed_dict: Any) -> set[str]:
    return set(typed_dict.__required_keys__ | typed_dict.__optional_keys__)


def test_every_sdk_field_has_a_decided_handling() -> None:
    sdk_fields = keys(ResponseCreateParamsNonStreaming) | keys(ResponseCreateParamsStreaming)
    assert sdk_fields == set(REQUEST_FIELDS) - EXTENSIONS


def test_the_request_model_takes_exactly_the_decided_fields() -> None:
    assert set(CreateResponseRequest.model_fields) == set(REQUEST_FIELDS)


def test_reasoning_and_text_take_exactly_the_sdks_keys() -> None:
    assert keys(ReasoningParam) == keys(Reasoning)
    assert keys(TextParam) == keys(ResponseTextConfigParam)


def test_the_include_row_lists_every_supported_value() -> None:
    listed = set(re.findall(r"`([a-z_.]+)`", REQUEST_FIELDS["include"].how))
    assert listed == SUPPORTED_INCLUDES


def test_the_readme_table_is_the_generated_one() -> None:
    readme = (REPO / "README.md").read_text()
    found = re.search(r"<!-- request-fields:start[^\n]*-->\n(.*?)<!-- request-fields:end -->", readme, re.S)
    assert found is not None, "the README lost its request-fields markers"
    assert found.group(1) == readme_table(), "regenerate with riposte.engine.request_fields.readme_table()"


# -- the live walk ---------------------------------------------------------------------------------


@dataclass
class Walk:
    server: RunningServer
    upstream: ScriptedUpstream

    def create(self, answer: bool = True, **fields: Any) -> tuple[httpx.Response, dict[str, Any] | None]:
        """POST a create; the upstream request it caused, if any. Without an `answer` scripted, a
        request that wrongly reaches the upstream gets a 502, not the expected 400."""
        seen = len(self.upstream.requests)
        if answer:
            self.upstream.enqueue(text_reply("ok"))
        reply = httpx.post(f"{self.server.base_url}/responses", json={"model": "fake/m", "input": "hi", **fields},
                           timeout=30)
        sent = self.upstream.requests[seen] if len(self.upstream.requests) > seen else None
        if reply.status_code == 200:
            Response.model_validate(reply.json())
        return reply, sent

    def ok(self, **fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        reply, sent = self.create(**fields)
        assert reply.status_code == 200, reply.text
        assert sent is not None
        return reply.json(), sent

    def rejected(self, field: str, value: Any, param: str | None = None, **more: Any) -> str:
        reply, sent = self.create(answer=False, **{field: value}, **more)
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == (param or field)
        assert sent is None, "a rejected request must not reach the upstream"
        message: str = reply.json()["error"]["message"]
        return message

    def stored(self, response_id: str) -> httpx.Response:
        return httpx.get(f"{self.server.base_url}/responses/{response_id}", timeout=30)


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    data = tmp_path_factory.mktemp("walk")
    with ScriptedUpstream() as upstream, server_factory(data, f"sqlite+aiosqlite:///{data / 'r.db'}") as factory:
        server = factory(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")])
        yield Walk(server, upstream)


def _background(walk: Walk) -> None:
    assert walk.ok(background=False)[0]["background"] is False
    # Running one is tests/integration/test_background.py; here, the one combination refused.
    walk.rejected("background", True, param="store", store=False)


def _conversation(walk: Walk) -> None:
    conversation = httpx.post(f"{walk.server.base_url}/conversations", json={
        "items": [{"role": "user", "content": "remember 7"}]}, timeout=30).json()["id"]
    response, sent = walk.ok(conversation=conversation)
    assert response["conversation"] == {"id": conversation}
    assert [m["role"] for m in sent["messages"]] == ["user", "user"]


def _include(walk: Walk) -> None:
    walk.upstream.enqueue(reasoning_reply("thinking", "ok"))
    reply = httpx.post(f"{walk.server.base_url}/responses", json={
        "model": "fake/m", "input": "hi", "include": ["reasoning.encrypted_content"]}, timeout=30)
    assert reply.json()["output"][0]["encrypted_content"]
    image = {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"}
    response, sent = walk.ok(include=["message.input_image.image_url"],
                             input=[{"role": "user", "content": [{"type": "input_text", "text": "what is it"}, image]}])
    assert sent["messages"][0]["content"][1]["image_url"]["url"] == image["image_url"]
    listed = httpx.get(f"{walk.server.base_url}/responses/{response['id']}/input_items", timeout=30).json()
    assert listed["data"][0]["content"][1]["image_url"] == image["image_url"]
    walk.rejected("include", ["computer_call_output.output.image_url"], param="include[0]")


def _previous_response_id(walk: Walk) -> None:
    first, _ = walk.ok(input="first")
    _, sent = walk.ok(previous_response_id=first["id"], input="second")
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]


def _reasoning(walk: Walk) -> None:
    response, sent = walk.ok(reasoning={"effort": "low", "summary": "auto", "context": "all_turns"})
    assert sent["reasoning_effort"] == "low"
    assert response["reasoning"] == {"effort": "low", "summary": "auto", "context": "all_turns"}
    walk.rejected("reasoning", {"mode": "pro"}, param="reasoning.mode")
    walk.rejected("reasoning", {"unknown": 1}, param="reasoning.unknown")


def _store(walk: Walk) -> None:
    response, _ = walk.ok(store=False)
    assert walk.stored(response["id"]).status_code == 404


def _stream(walk: Walk) -> None:
    walk.upstream.enqueue(text_reply("ok"))
    events = raw_stream(walk.server, {"model": "fake/m", "input": "hi", "stream": True,
                                      "stream_options": {"include_obfuscation": False}})
    assert_valid_stream(events)


def _truncation(walk: Walk) -> None:
    assert walk.ok(truncation="disabled")[0]["truncation"] == "disabled"
    response, sent = walk.ok(truncation="auto")
    assert response["truncation"] == "auto" and sent["messages"] == [{"role": "user", "content": "hi"}]
    walk.rejected("truncation", "middle")


def _context_management(walk: Walk) -> None:
    response, sent = walk.ok(context_management=[{"type": "compaction", "compact_threshold": 100_000}])
    assert [item["type"] for item in response["output"]] == ["message"], "under the threshold: no compaction"
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    walk.rejected("context_management", [{"type": "other"}], param="context_management[0].type")


def _text(walk: Walk) -> None:
    response, sent = walk.ok(text={"format": {"type": "json_object"}, "verbosity": "low"})
    assert sent["response_format"] == {"type": "json_object"}
    assert "verbosity" not in sent, "the fake provider does not declare supports_verbosity"
    assert response["text"]["verbosity"] == "low"
    assert "response_format" not in walk.ok()[1]
    walk.rejected("text", {"unknown": 1}, param="text.unknown")


def _bookkeeping(field: str, value: Any) -> Callable[[Walk], None]:
    def check(walk: Walk) -> None:
        response, sent = walk.ok(**{field: value})
        assert response[field] == value
        assert walk.stored(response["id"]).json()[field] == value
        assert field not in sent
    return check


def _upstream(field: str, value: Any, sent_as: dict[str, Any], **more: Any) -> Callable[[Walk], None]:
    def check(walk: Walk) -> None:
        _, sent = walk.ok(**{field: value}, **more)
        assert {k: sent.get(k) for k in sent_as} == sent_as
    return check


def _stream_options(walk: Walk) -> None:
    walk.rejected("stream_options", {"include_obfuscation": False})  # only with stream: true


def _max_infer_iters(walk: Walk) -> None:
    walk.ok(max_infer_iters=1)
    walk.rejected("max_infer_iters", 101)


def _guardrails(field: str) -> Callable[[Walk], None]:
    """This server has no guardrails: naming none runs the turn as usual, naming one is a 400
    (test_guardrails.py covers servers that have some)."""
    def check(walk: Walk) -> None:
        walk.ok(**{field: []})
        assert "none are configured" in walk.rejected(field, ["omni"], param=f"{field}[0]")
    return check


def _echoed(field: str, value: Any, invalid: Any) -> Callable[[Walk], None]:
    def check(walk: Walk) -> None:
        assert walk.ok(**{field: value})[0][field] == value
        walk.rejected(field, invalid)
    return check


def _rejected(field: str, value: Any) -> Callable[[Walk], None]:
    def check(walk: Walk) -> None:
        message = walk.rejected(field, value)
        assert REQUEST_FIELDS[field].how in message
    return check


CHECKS: dict[str, Callable[[Walk], None]] = {
    "access_programs": _rejected("access_programs", {"program": "x"}),
    "background": _background,
    "background_options": _rejected("background_options", {"completion_window": "2h"}),
    "client_metadata": _bookkeeping("client_metadata", {"session_id": "s-1"}),
    "context_management": _context_management,
    "conversation": _conversation,
    "guardrails": _guardrails("guardrails"),
    "image": _rejected("image", {"size": "1024x1024"}),
    "include": _include,
    "input": _upstream("input", "walk input", {"messages": [{"role": "user", "content": "walk input"}]}),
    "instructions": _upstream("instructions", "Be brief.", {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}),
    "max_infer_iters": _max_infer_iters,
    "max_output_tokens": _upstream("max_output_tokens", 16, {"max_completion_tokens": 16}),
    "max_tool_calls": _echoed("max_tool_calls", 3, 0),
    "metadata": _bookkeeping("metadata", {"k": "v"}),
    "model": _upstream("model", "fake/walk-model", {"model": "walk-model"}),
    "moderation": _rejected("moderation", {"model": "omni-moderation-latest"}),
    "parallel_tool_calls": _upstream("parallel_tool_calls", False, {"parallel_tool_calls": False}, tools=TOOLS),
    "previous_response_id": _previous_response_id,
    "prompt": _rejected("prompt", {"id": "pmpt_1"}),
    "prompt_cache_key": _upstream("prompt_cache_key", "walk", {"prompt_cache_key": "walk"}),
    "prompt_cache_options": _rejected("prompt_cache_options", {"mode": "explicit"}),
    "prompt_cache_retention": _bookkeeping("prompt_cache_retention", "24h"),
    "reasoning": _reasoning,
    "safety_identifier": _upstream("safety_identifier", "sid", {"safety_identifier": "sid"}),
    "service_tier": _upstream("service_tier", "flex", {"service_tier": "flex"}),
    "shields": _guardrails("shields"),
    "store": _store,
    "stream": _stream,
    "stream_options": _stream_options,
    "temperature": _upstream("temperature", 0.25, {"temperature": 0.25}),
    "text": _text,
    "tool_choice": _upstream("tool_choice", "required", {"tool_choice": "required"}, tools=TOOLS),
    "tools": _upstream("tools", TOOLS, {"tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {}}}}]}),
    "top_logprobs": _upstream("top_logprobs", 2, {"logprobs": True, "top_logprobs": 2}),
    "top_p": _upstream("top_p", 0.5, {"top_p": 0.5}),
    "truncation": _truncation,
    "user": _upstream("user", "u-1", {"user": "u-1"}),
}


def test_every_field_has_a_live_check() -> None:
    assert set(CHECKS) == set(REQUEST_FIELDS)


@pytest.mark.parametrize("field", sorted(REQUEST_FIELDS))
def test_the_server_does_what_the_table_says(walk: Walk, field: str) -> None:
    CHECKS[field](walk)


def test_rejected_fields_are_only_those_the_table_rejects() -> None:
    rejected = {name for name, field in REQUEST_FIELDS.items() if field.handling is Handling.REJECTED}
    assert rejected == {"access_programs", "background_options", "image", "moderation", "prompt",
                        "prompt_cache_options"}

