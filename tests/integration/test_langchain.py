"""LangChain's `ChatOpenAI` (langchain-openai, pinned in the test extra), unmodified, on the
Responses API (`use_responses_api=True`): a plain answer with its usage, a stream, a tool loop with
LangChain sending the history itself and with `use_previous_response_id` (the server keeps it),
structured output through a JSON schema, and a reasoning model's reasoning item."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import (
    ScriptedUpstream,
    make_usage,
    reasoning_reply,
    text_reply,
    tool_calls_reply,
)


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


class Forecast(BaseModel):
    city: str
    sunny: bool


def chat_model(server: RunningServer, model: str = "gpt-4o", **options: Any) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=server.base_url, api_key="x",  # type: ignore[arg-type]
                      use_responses_api=True, max_retries=0, **options)


async def test_an_answer_with_its_usage_and_the_response_id(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("Hello!", usage=make_usage(5, 2)))

    answer = await chat_model(fake_server).ainvoke("Say hello")

    assert answer.text == "Hello!"
    assert answer.usage_metadata is not None
    assert (answer.usage_metadata["input_tokens"], answer.usage_metadata["output_tokens"]) == (5, 2)
    assert answer.response_metadata["id"].startswith("resp_")
    assert answer.response_metadata["status"] == "completed"
    assert upstream.requests[0]["messages"] == [{"role": "user", "content": "Say hello"}]


async def test_a_stream_adds_up_to_the_answer(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("Streaming hello, piece by piece!", usage=make_usage(5, 7)))

    total: Any = None
    async for chunk in chat_model(fake_server).astream("Say hello"):
        total = chunk if total is None else total + chunk

    assert isinstance(total.text, str) and total.text == "Streaming hello, piece by piece!"
    assert total.usage_metadata["output_tokens"] == 7
    assert upstream.requests[0]["stream"] is True


@pytest.mark.parametrize("server_keeps_history", [False, True])
async def test_a_tool_loop(fake_server: RunningServer, upstream: ScriptedUpstream,
                           server_keeps_history: bool) -> None:
    upstream.enqueue(tool_calls_reply([("call_1", "get_weather", '{"city": "Paris"}')]),
                     text_reply("It is sunny in Paris."))
    model = chat_model(fake_server, use_previous_response_id=server_keeps_history).bind_tools([get_weather])
    messages: list[BaseMessage] = [HumanMessage("Weather in Paris?")]

    asked = await model.ainvoke(messages)
    assert isinstance(asked, AIMessage)
    assert asked.tool_calls == [{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1",
                                 "type": "tool_call"}]
    messages += [asked, ToolMessage(await get_weather.ainvoke(asked.tool_calls[0]["args"]), tool_call_id="call_1")]
    final = await model.ainvoke(messages)

    assert final.text == "It is sunny in Paris."
    assert upstream.requests[0]["tools"][0]["function"]["name"] == "get_weather"
    history = upstream.requests[1]["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool"]
    assert history[1]["tool_calls"][0]["id"] == "call_1"
    assert history[2] == {"role": "tool", "tool_call_id": "call_1", "content": "Sunny in Paris."}


async def test_structured_output_through_a_json_schema(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply('{"city": "Paris", "sunny": true}'))

    forecast = await chat_model(fake_server).with_structured_output(Forecast, method="json_schema").ainvoke("Paris?")

    assert forecast == Forecast(city="Paris", sunny=True)
    response_format = upstream.requests[0]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Forecast"
    assert response_format["json_schema"]["strict"] is True


async def test_a_reasoning_model_answer_keeps_its_reasoning(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(reasoning_reply("Six times seven.", "42"))

    answer = await chat_model(fake_server, "o4-mini", reasoning={"effort": "low"}).ainvoke("Six times seven?")

    assert answer.text == "42"
    assert isinstance(answer.content, list)
    reasoning = [block for block in answer.content if isinstance(block, dict) and block.get("type") == "reasoning"]
    assert len(reasoning) == 1
    assert reasoning[0]["content"] == [{"type": "reasoning_text", "text": "Six times seven."}]
    assert upstream.requests[0]["reasoning_effort"] == "low"
