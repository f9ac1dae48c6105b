"""Every way an upstream can misbehave, streaming and not: what the client sees, what is stored,
that the server is healthy after, and that no task or upstream connection is left behind."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from openai.types.responses import Response

from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import (
    Reply,
    ScriptedUpstream,
    cut_reply,
    error_reply,
    hanging_reply,
    raw_reply,
    reset_reply,
    slow_reply,
    text_reply,
    tool_calls_reply,
)
from tests.faults.conftest import MAX_OUTPUT_CHARS
from tests.integration.sdk import stream_events

# The codes a response object's `error.code` may take for what the upstream did.
ALLOWED_ERROR_CODES = {"server_error", "rate_limit_exceeded", "invalid_prompt"}
LOOKUP_TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
CHUNK = (b'data: {"id": "c1", "object": "chat.completion.chunk", '
         b'"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n')


@dataclass(frozen=True)
class Fault:
    """One misbehaviour and what must come of it."""

    reply: Reply | None  # None: the model's provider fails before any HTTP (`model` says which)
    status: str  # the stored (and reported) status
    message: str = ""  # in the error message of a failed response
    http_status: int = 502  # non-streaming: the status of a failed create
    model: str = "fake/m"
    request: dict[str, Any] = field(default_factory=dict)
    partial_output: str | None = None  # text the stored failed response keeps


FAULTS = {
    "connection_refused": Fault(None, "failed", "upstream connection failed", model="refused/m"),
    "connect_deadline": Fault(None, "failed", "connect deadline of 0.3 s", model="blackhole/m"),
    "status_500": Fault(error_reply(500, "backend exploded"), "failed", "upstream returned 500: backend exploded"),
    "status_429": Fault(error_reply(429, "slow down"), "failed", "upstream returned 429: slow down", 429),
    "status_400": Fault(error_reply(400, "bad prompt"), "failed", "upstream returned 400: bad prompt", 400),
    "hang_before_first_byte": Fault(hanging_reply(10), "failed", "first-byte deadline of 0.5 s"),
    "silence_mid_answer": Fault(slow_reply("one two three", delay_s=5, pieces=3), "failed",
                                "idle deadline of 0.3 s"),
    "drip": Fault(slow_reply("drip " * 60, delay_s=0.1, pieces=60), "failed", "total deadline of 1.5 s"),
    "reset_mid_stream": Fault(reset_reply("one two three four five", after_chunks=3), "failed",
                              "upstream connection failed", partial_output="one two "),
    "clean_close_mid_answer": Fault(cut_reply("one two three"), "failed", "without a finish_reason",
                                    partial_output="one two three"),
    "malformed_sse": Fault(raw_reply(CHUNK, b"data: {not json\n\n"), "failed", "malformed chunk",
                           partial_output="Hi"),
    "chunk_not_an_object": Fault(raw_reply(CHUNK, b"data: [1, 2]\n\n"), "failed", "not a JSON object"),
    "number_content": Fault(Reply(deltas=({"role": "assistant", "content": "Hi"}, {"content": 42})), "failed",
                            "delta.content is int, not a string", partial_output="Hi"),
    "list_content": Fault(Reply(deltas=({"content": [{"type": "text", "text": "x"}]},)), "failed",
                          "delta.content is list, not a string"),
    "choices_not_a_list": Fault(raw_reply(b'data: {"id": "c1", "choices": 7}\n\n'), "failed", "malformed chunk"),
    "json_200_on_stream": Fault(raw_reply(b'{"id": "chatcmpl-1", "choices": []}', content_type="application/json"),
                                "failed", "content type 'application/json'"),
    "html_200_on_stream": Fault(raw_reply(b"<html><body>Gateway</body></html>", content_type="text/html"),
                                "failed", "content type 'text/html'"),
    "empty_choices": Fault(raw_reply(b'data: {"id": "c1", "choices": []}\n\n', b"data: [DONE]\n\n"), "failed",
                           "without a finish_reason"),
    "empty_body": Fault(raw_reply(), "failed", "without a finish_reason"),
    "error_chunk_mid_stream": Fault(raw_reply(CHUNK, b'data: {"error": {"message": "overloaded"}}\n\n'), "failed",
                                    "upstream stream error: overloaded", partial_output="Hi"),
    "huge_output": Fault(text_reply("word " * 3000, pieces=300), "incomplete", http_status=200),
    # Usage the backend got wrong is bookkeeping: the answer stands and the usage is counted locally.
    "usage_beyond_64_bits": Fault(text_reply("Hello!", usage={"prompt_tokens": 2**64, "completion_tokens": 2,
                                                           "total_tokens": 2**64 + 2}),
                                  "completed", http_status=200, partial_output="Hello!"),
    "negative_usage": Fault(text_reply("Hello!", usage={"prompt_tokens": -5, "completion_tokens": 2}),
                            "completed", http_status=200, partial_output="Hello!"),
    "usage_not_numbers": Fault(text_reply("Hello!", usage={"prompt_tokens": "many", "completion_tokens": 2,
                                                          "prompt_tokens_details": "x"}),
                               "completed", http_status=200, partial_output="Hello!"),
    "tool_call_with_invalid_json_arguments": Fault(
        tool_calls_reply([("call_1", "lookup", '{"q": "unclosed')]), "completed", http_status=200,
        request={"tools": [LOOKUP_TOOL]}),
}


@pytest.fixture(scope="module")
def baseline_tasks(fault_server: RunningServer) -> int:
    _check_health(fault_server)
    return fault_server.task_count()


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_streaming_fault(name: str, fault_server: RunningServer, fault_upstream: ScriptedUpstream,
                         baseline_tasks: int) -> None:
    fault = FAULTS[name]
    if fault.reply is not None:
        fault_upstream.enqueue(fault.reply)
    events = stream_events(fault_server, model=fault.model, input="hi", **fault.request)

    assert_valid_stream(events)
    final = events[-1].response
    assert events[-1].type == f"response.{fault.status}"
    _check_outcome(fault, final)
    if fault.status == "failed":
        assert events[-2].type == "error" and fault.message in events[-2].message
    _check_stored(fault_server, final.id, fault)
    _check_healthy_and_clean(fault_server, fault_upstream, baseline_tasks)


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_non_streaming_fault(name: str, fault_server: RunningServer, fault_upstream: ScriptedUpstream,
                             baseline_tasks: int) -> None:
    fault = FAULTS[name]
    if fault.reply is not None:
        fault_upstream.enqueue(fault.reply)
    reply = httpx.post(f"{fault_server.base_url}/responses",
                       json={"model": fault.model, "input": "hi", **fault.request}, timeout=30)

    assert reply.status_code == fault.http_status, reply.text
    if fault.status == "failed":
        error = reply.json()["error"]
        assert fault.message in error["message"]
        # Typed as OpenAI types the status: a client's mistake the backend caught, or the backend's failure.
        assert error["type"] == {400: "invalid_request_error", 429: "requests"}.get(fault.http_status, "server_error")
        assert error["code"]
        response_id = _newest_response_id(fault_server)
    else:
        final = Response.model_validate(reply.json())
        _check_outcome(fault, final)
        response_id = final.id
    _check_stored(fault_server, response_id, fault)
    _check_healthy_and_clean(fault_server, fault_upstream, baseline_tasks)


def test_client_disconnect_mid_stream_stores_cancelled(fault_server: RunningServer,
                                                        fault_upstream: ScriptedUpstream,
                                                        baseline_tasks: int) -> None:
    fault_upstream.enqueue(slow_reply("a b c d e f g h i j", delay_s=0.1, pieces=10))
    body = {"model": "fake/m", "input": "slow please", "stream": True}
    response_id = ""
    with httpx.Client(timeout=10) as http, http.stream("POST", f"{fault_server.base_url}/responses",
                                                        json=body) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                event = orjson.loads(line[6:])
                response_id = response_id or event["response"]["id"]
                if event["type"] == "response.output_text.delta":
                    break
    assert fault_upstream.wait_for_disconnect(timeout=5), "the upstream call was not stopped"
    stored = _wait_for(lambda: _stored(fault_server, response_id))
    assert stored["status"] == "cancelled"
    _check_healthy_and_clean(fault_server, fault_upstream, baseline_tasks)


def test_client_disconnect_while_waiting_for_a_json_answer_still_stores_it(
    fault_server: RunningServer, fault_upstream: ScriptedUpstream, baseline_tasks: int
) -> None:
    """A non-streaming client that gives up does not stop the turn: the answer is kept."""
    fault_upstream.enqueue(slow_reply("a b c d e", delay_s=0.1, pieces=5))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{fault_server.base_url}/responses", json={"model": "fake/m", "input": "slow"}, timeout=0.2)
    stored = _wait_for(lambda: _newest_if(fault_server, "completed", "a b c d e"))
    assert stored["output"][0]["content"][0]["text"] == "a b c d e"
    _check_healthy_and_clean(fault_server, fault_upstream, baseline_tasks)


# -- checks --------------------------------------------------------------------------------------


def _check_outcome(fault: Fault, final: Response) -> None:
    assert final.status == fault.status
    if fault.status == "failed":
        assert final.error is not None and fault.message in final.error.message
        assert final.error.code in ALLOWED_ERROR_CODES
    if fault.partial_output is not None:
        expected_item_status = "completed" if fault.status == "completed" else "incomplete"
        assert final.output and final.output[0].status == expected_item_status  # type: ignore[union-attr]
        assert final.output_text == fault.partial_output
    if fault.status == "completed" and final.usage is not None:
        assert 0 < final.usage.input_tokens < 2**53 and final.usage.output_tokens >= 0
    if fault.status == "incomplete":
        assert final.incomplete_details is not None
        assert final.incomplete_details.reason == "max_output_tokens"
        assert 0 < len(final.output_text) <= MAX_OUTPUT_CHARS
    if fault.request.get("tools"):
        [call] = final.output
        assert call.type == "function_call" and call.arguments == '{"q": "unclosed'


def _check_stored(server: RunningServer, response_id: str, fault: Fault) -> None:
    stored = _stored(server, response_id)
    assert stored is not None, "the response was not stored"
    _check_outcome(fault, Response.model_validate(stored))


def _check_healthy_and_clean(server: RunningServer, upstream: ScriptedUpstream, baseline_tasks: int) -> None:
    _check_health(server, upstream)
    # Nothing left running on the server, and no upstream connection left mid-request.
    _wait_for(lambda: server.task_count() <= baseline_tasks or None)
    _wait_for(lambda: not upstream.connections.busy or None)


def _check_health(server: RunningServer, upstream: ScriptedUpstream | None = None) -> None:
    assert httpx.get(f"{server.base_url.removesuffix('/v1')}/health", timeout=5).status_code == 200
    if upstream is not None:
        upstream.reset()
        upstream.enqueue(text_reply("still here"))
        reply = httpx.post(f"{server.base_url}/responses", json={"model": "fake/m", "input": "ok?"}, timeout=10)
        assert reply.status_code == 200 and reply.json()["output"][0]["content"][0]["text"] == "still here"


def _stored(server: RunningServer, response_id: str) -> dict[str, Any] | None:
    reply = httpx.get(f"{server.base_url}/responses/{response_id}", timeout=5)
    return reply.json() if reply.status_code == 200 else None  # type: ignore[no-any-return]


def _newest_response_id(server: RunningServer) -> str:
    [newest] = httpx.get(f"{server.base_url}/responses?limit=1", timeout=5).json()["data"]
    return str(newest["id"])


def _newest_if(server: RunningServer, status: str, text: str) -> dict[str, Any] | None:
    [newest] = httpx.get(f"{server.base_url}/responses?limit=1", timeout=5).json()["data"]
    output = newest["output"]
    if newest["status"] == status and output and output[0]["content"][0]["text"] == text:
        return newest  # type: ignore[no-any-return]
    return None


def _wait_for(probe: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while (result := probe()) is None:
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)
    return result
