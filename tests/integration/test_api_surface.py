"""The HTTP surface: bad input gets a 4xx envelope naming the param, listings paginate,
the passthrough endpoints route through the same upstreams, and fields are echoed."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response

from riposte.config import ProviderConfig
from riposte.testing.server import RunningServer
from tests.conftest import ServerFactory
from tests.fakes.scripted_upstream import ScriptedUpstream, make_usage, text_reply
from tests.integration.sdk import sdk


def post(server: RunningServer, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", timeout=30, **kwargs)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    return body


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": "fake/m"}, "input"),
        ({"model": "fake/m", "input": "hi", "bogus": 1}, "bogus"),
        ({"model": "fake/m", "input": "hi", "temperature": 7}, "temperature"),
        ({"model": "fake/m", "input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "fake/m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
         "input[0].content[0].type"),
        ({"model": "fake/m", "input": [{"type": "computer_call_output", "call_id": "c"}]}, "input[0].type"),
        ({"model": "fake/m", "input": "hi", "truncation": "middle"}, "truncation"),
        ({"model": "fake/m", "input": "hi", "include": ["computer_call_output.output.image_url"]}, "include[0]"),
        ({"model": "fake/m", "input": "hi", "tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
        ({"model": "fake/m", "input": "hi", "tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0].server_url"),
        ({"model": "fake/m", "input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"model": "fake/m", "input": "hi", "background": True, "store": False}, "store"),
        ({"model": "fake/m", "input": "hi", "metadata": {"k": "v" * 600}}, "metadata"),
    ],
)
def test_bad_create_requests_get_a_400_naming_the_param(
    fake_server: RunningServer, body: dict[str, Any], param: str
) -> None:
    response = post(fake_server, "/responses", json=body)
    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == param
    assert error_of(response)["type"] == "invalid_request_error"


def test_invalid_json_is_a_400(fake_server: RunningServer) -> None:
    response = post(fake_server, "/responses", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_body_over_the_limit_is_a_413(make_server: ServerFactory, upstream: ScriptedUpstream) -> None:
    server = make_server(max_request_bytes=1000,
                         providers=[ProviderConfig(name="fake", base_url=upstream.base_url)])
    response = post(server, "/responses", json={"model": "fake/m", "input": "x" * 5000})
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert error_of(response)["param"] == "body"


def test_unknown_provider_or_model_is_a_404_model_not_found(
    make_server: ServerFactory, upstream: ScriptedUpstream
) -> None:
    server = make_server(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, models=["m1"])])
    for model in ("nope/m1", "fake/other"):
        response = post(server, "/responses", json={"model": model, "input": "hi"})
        assert response.status_code == 404
        assert error_of(response)["code"] == "model_not_found"


def test_bare_model_name_goes_to_the_default_provider(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("hello"))
    response = sdk(fake_server).responses.create(model="plain-model", input="hi")
    assert response.output_text == "hello"
    assert upstream.requests[0]["model"] == "plain-model"
    assert response.model == "plain-model"


def test_unknown_response_id_is_a_404_and_cannot_be_continued(fake_server: RunningServer) -> None:
    client = sdk(fake_server)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_missing")
    with pytest.raises(openai.NotFoundError):
        client.responses.delete("resp_missing")
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_missing")

    # As the hosted API answers: a 400 whose code clients recognise (they send the full input again).
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="fake/m", input="hi", previous_response_id="resp_missing")
    error: dict[str, Any] = raised.value.body  # type: ignore[assignment]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error", "previous_response_not_found", "previous_response_id")
    assert "resp_missing" in error["message"]


def test_unknown_route_is_a_404_envelope(fake_server: RunningServer) -> None:
    response = httpx.get(f"{fake_server.base_url}/nothing-here")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_every_honoured_field_is_echoed_and_sent_upstream(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("ok", usage=make_usage(7, 2, cached_tokens=3)))
    response = sdk(fake_server).responses.create(
        model="fake/m", input="hi", instructions="Be brief.", temperature=0.3, top_p=0.9, top_logprobs=2,
        max_output_tokens=50, metadata={"team": "a"}, user="u1", safety_identifier="s1",
        prompt_cache_key="k1", service_tier="flex", store=True, parallel_tool_calls=False,
    )
    sent = upstream.requests[0]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    expected = {"temperature": 0.3, "top_p": 0.9, "max_completion_tokens": 50, "user": "u1",
                "safety_identifier": "s1", "prompt_cache_key": "k1", "service_tier": "flex",
                "logprobs": True, "top_logprobs": 2, "stream": True, "stream_options": {"include_usage": True}}
    assert {k: sent[k] for k in expected} == expected
    assert "parallel_tool_calls" not in sent  # only meaningful with tools
    assert (response.instructions, response.temperature, response.top_p, response.top_logprobs) == (
        "Be brief.", 0.3, 0.9, 2)
    assert (response.max_output_tokens, response.metadata, response.user) == (50, {"team": "a"}, "u1")
    assert (response.safety_identifier, response.prompt_cache_key, response.service_tier) == ("s1", "k1", "flex")
    assert response.parallel_tool_calls is False
    assert response.usage is not None and response.usage.input_tokens_details.cached_tokens == 3


def test_defaults_are_concrete_values_never_null(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("ok"))
    raw = post(fake_server, "/responses", json={"model": "fake/m", "input": "hi"}).json()
    expected = {"temperature": 1.0, "top_p": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0,
                "top_logprobs": 0, "tool_choice": "auto", "truncation": "disabled", "background": False,
                "service_tier": "default", "tools": [], "parallel_tool_calls": True,
                "text": {"format": {"type": "text"}},
                "status": "completed", "store": True, "metadata": {}}
    assert {k: raw[k] for k in expected} == expected
    assert raw["usage"]["total_tokens"] > 0
    [message] = raw["output"]
    assert message["id"].startswith("msg_") and message["status"] == "completed"
    assert message["content"][0]["annotations"] == [] and message["content"][0]["logprobs"] == []
    Response.model_validate(raw)


def test_instructions_are_not_inherited_through_previous_response_id(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("one"), text_reply("two"))
    client = sdk(fake_server)
    first = client.responses.create(model="fake/m", input="a", instructions="Speak like a pirate.")
    second = client.responses.create(model="fake/m", input="b", previous_response_id=first.id)
    assert upstream.requests[1]["messages"] == [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "one"}, {"role": "user", "content": "b"}]
    assert second.instructions is None


def test_store_false_is_not_retrievable(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("ok"))
    client = sdk(fake_server)
    response = client.responses.create(model="fake/m", input="hi", store=False)
    assert response.store is False  # type: ignore[attr-defined]
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_list_responses_paginates_with_after_limit_and_order(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    ids = []
    for n in range(3):
        upstream.enqueue(text_reply(f"r{n}"))
        ids.append(client.responses.create(model="fake/m", input=f"q{n}").id)
    first_page = httpx.get(f"{fake_server.base_url}/responses", params={"limit": 2, "order": "asc"}).json()
    assert [r["id"] for r in first_page["data"]][-2:] != []
    newest = httpx.get(f"{fake_server.base_url}/responses", params={"limit": 2}).json()
    assert [r["id"] for r in newest["data"]] == [ids[2], ids[1]] and newest["has_more"] is True
    rest = httpx.get(f"{fake_server.base_url}/responses", params={"limit": 2, "after": ids[1]}).json()
    assert rest["data"][0]["id"] == ids[0]


def test_input_items_paginate_with_after_before_and_order(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("ok"))
    client = sdk(fake_server)
    response = client.responses.create(model="fake/m", input=[
        {"role": "user", "content": f"m{n}"} for n in range(5)])
    ascending = client.responses.input_items.list(response.id, order="asc", limit=2)
    assert [i.content[0].text for i in ascending.data] == ["m0", "m1"]  # type: ignore[union-attr]
    assert ascending.has_more is True
    after = client.responses.input_items.list(response.id, order="asc", after=ascending.data[-1].id, limit=10)
    assert [i.content[0].text for i in after.data] == ["m2", "m3", "m4"]  # type: ignore[union-attr]
    descending = client.responses.input_items.list(response.id)
    assert [i.content[0].text for i in descending.data] == ["m4", "m3", "m2", "m1", "m0"]  # type: ignore[union-attr]
    # The SDK's list() has no `before`; the endpoint does.
    before = httpx.get(f"{fake_server.base_url}/responses/{response.id}/input_items",
                       params={"order": "asc", "before": after.data[0].id}).json()
    assert [i["content"][0]["text"] for i in before["data"]] == ["m0", "m1"]
    # `before` is the previous page: the items just before the cursor, not the list's first ones.
    previous = httpx.get(f"{fake_server.base_url}/responses/{response.id}/input_items",
                         params={"order": "asc", "before": after.data[-1].id, "limit": 2}).json()
    assert ([i["content"][0]["text"] for i in previous["data"]], previous["has_more"]) == (["m2", "m3"], True)
    previous = httpx.get(f"{fake_server.base_url}/responses/{response.id}/input_items",
                         params={"order": "desc", "before": descending.data[-1].id,
                                 "limit": 2}).json()
    assert ([i["content"][0]["text"] for i in previous["data"]], previous["has_more"]) == (["m2", "m1"], True)


def test_chat_completions_passthrough_streams_and_routes(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("pass through", usage=make_usage(3, 2)))
    client = sdk(fake_server)
    chunks = list(client.chat.completions.create(
        model="fake/m", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "pass through"
    assert upstream.requests[0]["model"] == "m"


def test_chat_completions_passthrough_non_streaming(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("whole"))
    completion = sdk(fake_server).chat.completions.create(model="fake/m", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "whole"


def test_chat_passthrough_upstream_error_keeps_its_status(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    from tests.fakes.scripted_upstream import error_reply

    upstream.enqueue(error_reply(429, "slow down"))
    with pytest.raises(openai.RateLimitError):
        sdk(fake_server).chat.completions.create(
            model="fake/m", messages=[{"role": "user", "content": "hi"}], stream=True)


def test_embeddings_passthrough(fake_server: RunningServer) -> None:
    result = sdk(fake_server).embeddings.create(model="fake/emb", input=["a", "b"])
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8


def test_models_lists_provider_prefixed_ids(make_server: ServerFactory, upstream: ScriptedUpstream) -> None:
    server = make_server(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, models=["m1", "m2"])])
    models = sdk(server).models.list()
    assert [m.id for m in models.data] == ["fake/m1", "fake/m2"]


def test_health(fake_server: RunningServer) -> None:
    assert httpx.get(f"{fake_server.base_url}/health").json() == {"status": "ok"}
    assert httpx.get(fake_server.base_url.removesuffix("/v1") + "/health").status_code == 200


def test_chat_passthrough_failure_mid_stream_ends_with_an_error_line(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    from tests.fakes.scripted_upstream import dropped_reply

    upstream.enqueue(dropped_reply("a b c d e f", after_chunks=2))
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{fake_server.base_url}/chat/completions", json=body, timeout=30) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert '"error"' in lines[-2] and lines[-1] == "data: [DONE]"
