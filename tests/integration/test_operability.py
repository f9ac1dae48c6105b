"""What an operator sees of a real server process: the request log, metrics and traces."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.scripted_upstream import (
    ScriptedUpstream,
    error_reply,
    make_usage,
    slow_reply,
    text_reply,
    tool_calls_reply,
)
from tests.integration.server_process import ServerProcess

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "examples" / "recordings"


def provider_config(tmp_path: Path, upstream: ScriptedUpstream) -> Path:
    config = tmp_path / "riposte.yaml"
    config.write_text(f"providers:\n  - name: fake\n    base_url: {upstream.base_url}\n    api_key: secret-key\n")
    return config


@pytest.fixture(scope="module")
def module_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory, module_upstream: ScriptedUpstream) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("ops")
    config = provider_config(tmp, module_upstream)
    with ServerProcess("--config", str(config), "--log-format", "json", data_dir=tmp / "data") as server:
        yield server


@pytest.fixture
def upstream_now(module_upstream: ScriptedUpstream) -> ScriptedUpstream:
    module_upstream.reset()
    return module_upstream


def sdk(server: ServerProcess, **kwargs: Any) -> openai.OpenAI:
    options: dict[str, Any] = {"max_retries": 0, "timeout": 30, **kwargs}
    return openai.OpenAI(base_url=server.base_url, api_key="x", **options)


def access_line(server: ServerProcess, request_id: str) -> dict[str, Any]:
    return server.wait_for_log(lambda line: line.get("logger") == "riposte.access"
                               and line.get("request_id") == request_id)


def test_start_up_says_mode_providers_database_and_url(json_server: ServerProcess) -> None:
    messages = [str(line["message"]) for line in json_server.json_lines() if line.get("logger") == "riposte.startup"]
    text = "\n".join(messages)
    assert f"http://127.0.0.1:{json_server.port}/v1" in text
    assert "inference mode: live" in text
    assert "provider fake (default)" in text and "(API key set)" in text
    assert "database: sqlite+aiosqlite:///" in text and "data directory:" in text
    assert "secret-key" not in "\n".join(json_server.lines())


def test_a_completed_turn_writes_one_structured_request_line(
    json_server: ServerProcess, upstream_now: ScriptedUpstream
) -> None:
    upstream_now.enqueue(text_reply("hello", usage=make_usage(7, 3)))
    raw = sdk(json_server).responses.with_raw_response.create(
        model="fake/m", input="hi", extra_headers={"x-request-id": "client-req-1"})
    response = raw.parse()
    assert raw.headers["x-request-id"] == "client-req-1"

    line = access_line(json_server, "client-req-1")
    assert not [entry for entry in json_server.json_lines() if entry.get("logger") == "uvicorn.access"]
    assert line["level"] == "info"
    assert line["method"] == "POST" and line["path"] == "/v1/responses" and line["status"] == 200
    assert line["response_id"] == response.id and line["model"] == "fake/m" and line["provider"] == "fake"
    assert line["upstream_status"] == 200 and line["tokens_in"] == 7 and line["tokens_out"] == 3
    assert isinstance(line["duration_ms"], float)


def test_a_websocket_turn_is_logged_by_riposte_alone(
    json_server: ServerProcess, upstream_now: ScriptedUpstream
) -> None:
    """riposte.access writes the turn's line; uvicorn's "[accepted]" and "connection open" for the
    socket would only repeat part of it."""
    upstream_now.enqueue(text_reply("hello over a socket"))
    with sdk(json_server).responses.connect() as connection:
        connection.response.create(model="fake/m", input="hi")
        completed = next(event for event in connection if event.type == "response.completed")

    assert completed.type == "response.completed"
    line = json_server.wait_for_log(lambda entry: entry.get("logger") == "riposte.access"
                                    and entry.get("response_id") == completed.response.id)
    assert (line["method"], line["path"], line["status"]) == ("WS", "/v1/responses", 200)
    from_uvicorn = [str(entry["message"]) for entry in json_server.json_lines()
                    if str(entry.get("logger")).startswith("uvicorn")]
    assert from_uvicorn, "uvicorn's own start-up lines still show"
    assert not [message for message in from_uvicorn if "WebSocket" in message or "connection " in message]


def test_a_stream_the_client_leaves_is_logged_499(json_server: ServerProcess, upstream_now: ScriptedUpstream) -> None:
    """As nginx logs it: 499, client closed request; not the 200 the stream started with."""
    upstream_now.enqueue(slow_reply("word " * 200, delay_s=0.05, pieces=200))
    with httpx.stream("POST", f"{json_server.base_url}/responses", timeout=30, headers={"x-request-id": "left-sse"},
                      json={"model": "fake/m", "input": "talk for a while", "stream": True}) as reply:
        assert reply.status_code == 200
        lines = reply.iter_lines()
        while "response.output_text.delta" not in next(lines):
            pass
    line = access_line(json_server, "left-sse")
    assert (line["status"], line["level"]) == (499, "info")

    upstream_now.enqueue(slow_reply("word " * 200, delay_s=0.05, pieces=200))
    with sdk(json_server).responses.connect() as connection:
        connection.response.create(model="fake/m", input="talk for a while")
        created = next(event for event in connection if event.type == "response.created")
        next(event for event in connection if event.type == "response.output_text.delta")
    line = json_server.wait_for_log(lambda entry: entry.get("logger") == "riposte.access"
                                    and entry.get("response_id") == created.response.id)
    assert (line["method"], line["status"]) == ("WS", 499)


def test_a_request_whose_client_leaves_before_the_answer_is_logged_499_and_still_stored(
    json_server: ServerProcess, upstream_now: ScriptedUpstream
) -> None:
    """A non-streaming request too: not the 200 of an answer nobody received. The turn still runs
    to its end and is stored (docs/RELIABILITY.md), so the answer can be fetched later."""
    upstream_now.enqueue(slow_reply("word " * 20, delay_s=0.05, pieces=20))  # a second of answer
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{json_server.base_url}/responses", timeout=0.3, headers={"x-request-id": "left-json"},
                   json={"model": "fake/m", "input": "talk for a while"})
    line = access_line(json_server, "left-json")
    assert (line["status"], line["level"]) == (499, "info")
    stored = sdk(json_server).responses.retrieve(line["response_id"])
    assert stored.status == "completed"
    assert stored.output_text == "word " * 20


def test_a_client_that_leaves_while_sending_its_body_is_logged_499_without_an_error(
        json_server: ServerProcess) -> None:
    # The head promises 100 bytes, 10 come, then the connection closes: the body read ends with
    # the disconnect. Not a 500 with a traceback in the log.
    host, port = json_server.base_url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: " + f"{host}:{port}".encode()
                           + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
                           b"x-request-id: left-body\r\n\r\n" + b'{"model": ')
    line = access_line(json_server, "left-body")
    assert (line["status"], line["level"]) == (499, "info")
    time.sleep(0.2)  # an error line would follow the access line
    assert not [entry for entry in json_server.json_lines() if entry.get("level") == "error"
                and "/v1/responses" in str(entry.get("message"))]


def test_every_response_gets_a_request_id(json_server: ServerProcess) -> None:
    reply = httpx.get(f"{json_server.base_url}/responses/resp_nope", timeout=10)
    assert reply.status_code == 404
    assert reply.headers["x-request-id"].startswith("req_")
    assert access_line(json_server, reply.headers["x-request-id"])["status"] == 404


def test_a_failed_upstream_is_a_warning_with_its_cause(
    json_server: ServerProcess, upstream_now: ScriptedUpstream
) -> None:
    upstream_now.enqueue(error_reply(500, "the GPU caught fire"))
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(json_server).responses.create(model="fake/m", input="hi", extra_headers={"x-request-id": "fail-1"})
    assert caught.value.status_code == 502

    line = access_line(json_server, "fail-1")
    assert line["level"] == "warning" and line["status"] == 502 and line["upstream_status"] == 500
    failure = json_server.wait_for_log(lambda entry: entry.get("message") == "request failed"
                                       and entry.get("response_id") == line["response_id"])
    assert failure["level"] == "warning" and "the GPU caught fire" in str(failure["cause"])
    assert failure["provider"] == "fake"


def test_a_failed_stream_is_logged_with_its_cause(json_server: ServerProcess, upstream_now: ScriptedUpstream) -> None:
    upstream_now.enqueue(error_reply(503, "overloaded"))
    events = list(sdk(json_server).responses.create(model="fake/m", input="hi", stream=True,
                                                     extra_headers={"x-request-id": "fail-stream"}))
    assert events[-1].type == "response.failed"
    line = access_line(json_server, "fail-stream")
    assert line["status"] == 200 and line["level"] == "warning" and "overloaded" in str(line["error"])


def test_unknown_routes_and_methods_are_a_404_envelope(json_server: ServerProcess) -> None:
    for method, path in (("POST", "/v1/responses/resp_1/compactify"), ("POST", "/v1/nothing-here"),
                         ("PUT", "/v1/responses")):
        reply = httpx.request(method, f"{json_server.root_url}{path}", json={}, timeout=10)
        assert reply.status_code == 404, (method, path)
        error = reply.json()["error"]
        assert error["code"] == "not_found" and path in error["message"]


def metric_samples(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{server.root_url}/metrics", timeout=10).text
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def metric(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum over samples of `name` whose labels include `labels`."""
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and set(labels.items()) <= set(sample_labels))


def tool_turn(server: ServerProcess, upstream: ScriptedUpstream) -> None:
    """A file_search turn over a store whose one file was embedded by the scripted upstream."""
    client = sdk(server)
    store = client.vector_stores.create(name="docs", extra_body={"embedding_model": "fake/emb",
                                                                  "embedding_dimension": 8})
    file_id = client.files.create(file=("saturn.txt", b"Saturn has rings."), purpose="assistants").id
    client.vector_stores.files.create(vector_store_id=store.id, file_id=file_id)
    deadline = time.monotonic() + 60
    while client.vector_stores.files.retrieve(vector_store_id=store.id, file_id=file_id).status == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    upstream.enqueue(tool_calls_reply([("call_1", "knowledge_search", '{"query": "rings"}')]),
                     text_reply("Saturn."))
    response = client.responses.create(model="fake/m", input="Rings?",
                                       tools=[{"type": "file_search", "vector_store_ids": [store.id]}])
    assert response.output[0].type == "file_search_call" and response.output[0].status == "completed"


def test_metrics_move_after_a_streamed_turn_and_a_tool_turn(
    json_server: ServerProcess, upstream_now: ScriptedUpstream
) -> None:
    before = metric_samples(json_server)
    upstream_now.enqueue(text_reply("one two three", usage=make_usage(5, 3)))
    events = list(sdk(json_server).responses.create(model="fake/m", input="count", stream=True))
    assert events[-1].type == "response.completed"
    tool_turn(json_server, upstream_now)
    after = metric_samples(json_server)

    def moved(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert moved("riposte_http_requests_total", route="/v1/responses", method="POST", status="200") == 2
    assert moved("riposte_http_request_duration_seconds_count", route="/v1/responses") == 2
    assert moved("riposte_time_to_first_token_seconds_count", provider="fake", model="m") == 2
    assert moved("riposte_tokens_total", provider="fake", model="m", direction="input") >= 5
    assert moved("riposte_tokens_total", provider="fake", model="m", direction="output") >= 3
    assert moved("riposte_responses_total", status="completed") == 2
    assert moved("riposte_tool_calls_total", type="file_search_call", outcome="completed") == 1
    assert moved("riposte_tool_call_duration_seconds_count", type="file_search_call") == 1
    assert moved("riposte_ingestion_files_total", status="completed") == 1
    assert ("riposte_active_streams", ()) in after
    # Each upstream's read window, at its configured width on a server with CPU to spare.
    windows = [value for (name, _), value in after.items() if name == "riposte_paced_read_window_seconds"]
    assert windows and all(value == 0.02 for value in windows)


def test_a_replay_miss_is_logged_with_its_hash_and_not_retried(tmp_path: Path) -> None:
    with ServerProcess("--inference-mode", "replay", "--recordings", str(SEEDS), "--log-format", "json",
                       data_dir=tmp_path / "data") as server:
        attempts: list[httpx.Request] = []
        http = httpx.Client(event_hooks={"request": [attempts.append]})
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=2, http_client=http)
        with pytest.raises(openai.InternalServerError) as caught:
            client.responses.create(model="openai/gpt-4o", input="a question nobody recorded")
        assert len(attempts) == 1, "x-should-retry: false must stop the SDK's retries"
        assert caught.value.response.headers["x-should-retry"] == "false"
        assert caught.value.code == "recording_not_found"
        miss = server.wait_for_log(lambda line: line.get("message") == "replay miss")
        assert miss["level"] == "warning" and "request hash" in str(miss["cause"])


@pytest.mark.timeout(300)  # two worker processes start slowly on a busy machine
def test_metrics_add_up_across_two_workers(tmp_path: Path, upstream: ScriptedUpstream) -> None:
    config = provider_config(tmp_path, upstream)
    with ServerProcess("--config", str(config), "--workers", "2", data_dir=tmp_path / "data") as server:
        upstream.enqueue(*[text_reply(f"answer {n}") for n in range(12)])
        client = sdk(server)
        for n in range(12):
            # A fresh connection each time, so both workers take requests.
            client.with_options(http_client=httpx.Client()).responses.create(model="fake/m", input=f"q{n}")
        totals = [metric(metric_samples(server), "riposte_http_requests_total", route="/v1/responses")
                  for _ in range(4)]
        assert totals == [12.0] * 4, "every scrape, whichever worker answers it, sums both workers"


@pytest.mark.timeout(300)
def test_two_workers_share_a_burst_of_connections(tmp_path: Path) -> None:
    # Each worker accepts on a socket of its own (riposte.worker_sockets): with one shared socket, a
    # burst of keep-alive connections went mostly to one worker (8/56 of 64 measured).
    with ServerProcess("--workers", "2", data_dir=tmp_path / "data") as server:
        deadline = time.monotonic() + 120
        while len(listening := _sockets_per_child(server.pid, server.port, "0A")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # /health answered once the first worker was up
        assert len(listening) == 2 and not set.intersection(*listening), listening

        async def burst() -> list[int]:
            clients = [httpx.AsyncClient(base_url=server.root_url) for _ in range(64)]
            try:
                await asyncio.gather(*(client.get("/health") for client in clients))
                return [len(held) for held in _sockets_per_child(server.pid, server.port, "01")]
            finally:
                await asyncio.gather(*(client.aclose() for client in clients))

        held = asyncio.run(burst())
        assert len(held) == 2 and sum(held) == 64, held
        # Hashed by the kernel: each takes about half (under 12 would happen once in ~10^7 bursts).
        assert min(held) >= 12, held
        taken = subprocess.run([sys.executable, "-m", "riposte", "serve", "--workers", "2", "--host", "127.0.0.1",
                                "--port", str(server.port), "--data-dir", str(tmp_path / "other")],
                               capture_output=True, text=True, timeout=120, env=server.env)
        assert taken.returncode == 2
        assert f"cannot listen on 127.0.0.1:{server.port}: already in use" in taken.stderr


def _sockets_per_child(parent: int, port: int, state: str) -> list[set[str]]:
    """The sockets on `port` in a TCP `state` ("01" established, "0A" listening) that each child
    process of `parent` holds (from /proc), for the children that hold any."""
    wanted = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
            wanted.add(f"socket:[{fields[9]}]")
    held = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            sockets = {os.readlink(fd) for fd in (stat.parent / "fd").iterdir()} & wanted
        except OSError:  # a process that ended meanwhile
            continue
        if sockets:
            held.append(sockets)
    return held


class _Collector(BaseHTTPRequestHandler):
    received: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append(request)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def spans_of(requests: list[ExportTraceServiceRequest]) -> list[Any]:
    return [span for request in requests for resource in request.resource_spans
            for scope in resource.scope_spans for span in scope.spans]


def attributes(span: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in span.attributes:
        kind = attribute.value.WhichOneof("value")
        value = getattr(attribute.value, kind)
        values[attribute.key] = list(v.string_value for v in value.values) if kind == "array_value" else value
    return values


@pytest.mark.timeout(300)
def test_traces_reach_an_otlp_collector_with_genai_attributes(tmp_path: Path, upstream: ScriptedUpstream) -> None:
    received: list[ExportTraceServiceRequest] = []
    handler = type("Collector", (_Collector,), {"received": received})
    collector = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}/v1/traces"
    config = provider_config(tmp_path, upstream)
    try:
        with ServerProcess("--config", str(config), data_dir=tmp_path / "data",
                           env={"RIPOSTE_OTLP_TRACES_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}) as server:
            tool_turn(server, upstream)
            deadline = time.monotonic() + 20
            while len({span.name for span in spans_of(received)}) < 4 and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        collector.shutdown()
    by_name = {span.name: span for span in spans_of(received)}
    turn, tool = by_name["invoke_agent m"], by_name["execute_tool knowledge_search"]
    chats = [span for span in spans_of(received) if span.name == "chat m"]
    assert len(chats) == 2
    assert attributes(turn)["gen_ai.operation.name"] == "invoke_agent"
    assert attributes(turn)["gen_ai.provider.name"] == "fake"
    assert attributes(turn)["gen_ai.response.id"].startswith("resp_")
    assert attributes(chats[0])["gen_ai.operation.name"] == "chat"
    assert attributes(chats[0])["gen_ai.request.model"] == "m"
    assert attributes(chats[0])["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert attributes(tool)["gen_ai.operation.name"] == "execute_tool"
    assert attributes(tool)["gen_ai.tool.call.id"] == "call_1"
    for child in (*chats, tool):
        assert child.trace_id == turn.trace_id and child.parent_span_id == turn.span_id


def test_a_chat_completion_without_messages_is_a_400_not_a_crash(json_server: ServerProcess) -> None:
    reply = httpx.post(f"{json_server.base_url}/chat/completions", json={"model": "fake/m"}, timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "messages"


def test_the_single_backend_recipe_sends_a_slashed_model_id_whole(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    """README: `OPENAI_BASE_URL=<vLLM> ./scripts/serve`, then model="meta-llama/Llama-3.1-8B-Instruct"."""
    with ServerProcess(data_dir=tmp_path / "data", env={"OPENAI_BASE_URL": upstream.base_url}) as server:
        upstream.enqueue(text_reply("hi from vllm"))
        response = sdk(server).responses.create(model="meta-llama/Llama-3.1-8B-Instruct", input="hi")
        assert response.output_text == "hi from vllm"
        assert upstream.requests[0]["model"] == "meta-llama/Llama-3.1-8B-Instruct"


def test_a_missing_api_key_is_named_in_the_error(json_server: ServerProcess, upstream_now: ScriptedUpstream) -> None:
    upstream_now.enqueue(error_reply(401, "Incorrect API key provided"))
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(json_server).responses.create(model="fake/m", input="hi")
    assert "OPENAI_API_KEY" in caught.value.message
