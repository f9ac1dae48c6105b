"""A scripted fake of an OpenAI-compatible Chat Completions server.

Integration tests enqueue the exact replies the "model" should give, point the
server under test at ``ScriptedUpstream.base_url`` and afterwards inspect what
the server sent upstream (``requests``) and whether it hung up (``disconnects``).

It is a real HTTP server (Starlette on uvicorn, in a background thread with its
own event loop) rather than an httpx mock, so connection-level behaviour --
chunked SSE, a connection torn down mid-stream, a client that goes away -- is
exercised exactly as it would be against vLLM, Ollama or OpenAI itself.

Example::

    with ScriptedUpstream() as up:
        up.enqueue(text_reply("Hello there!", usage=make_usage(5, 3)))
        ...  # run the server under test with base_url=up.base_url
        assert up.requests[0]["stream"] is True
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "Reply",
    "ScriptedUpstream",
    "UpstreamCall",
    "cut_reply",
    "dropped_reply",
    "error_reply",
    "hanging_reply",
    "make_usage",
    "raw_reply",
    "reasoning_reply",
    "refusal_reply",
    "reset_reply",
    "slow_reply",
    "text_reply",
    "tool_calls_reply",
]

JSON = dict[str, Any]

EMBEDDING_DIMENSIONS: Final = 8
_START_TIMEOUT_S: Final = 10.0
_STOP_TIMEOUT_S: Final = 10.0

StreamOutcome = Literal["completed", "disconnected", "dropped"]


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class UpstreamCall:
    """One streamed chat call as the upstream saw it: its body, its caller's key, and how it ended."""

    body: JSON
    authorization: str
    outcome: StreamOutcome



@dataclass(frozen=True)
class Reply:
    """One scripted answer to one ``POST /v1/chat/completions``.

    ``deltas`` are the ``choices[0].delta`` objects of the streamed chunks, in
    order; the final chunk (empty delta + ``finish_reason``) and the optional
    usage chunk are added when the reply is played. Build these with the
    ``*_reply`` helpers, or directly for unusual shapes.
    """

    deltas: tuple[JSON, ...] = ()
    finish_reason: str | None = "stop"
    usage: JSON | None = None
    # Seconds to sleep between two streamed chunks.
    delay_s: float = 0.0
    # Extra seconds to sleep before the chunk at a position (a model that stops for a while mid-answer).
    pauses: tuple[tuple[int, float], ...] = ()
    # Abort the connection after this many chunks (no final chunk, no [DONE]).
    drop_after: int | None = None
    # When set, answer with this HTTP status and ``error_body`` instead of a completion.
    error_status: int | None = None
    error_body: JSON | None = None
    # End a drop with a TCP reset (RST) rather than a close (FIN).
    reset: bool = False
    # Seconds to wait before answering at all: no status line, no headers.
    hang_s: float = 0.0
    # A 200 whose body is exactly these bytes, sent one frame at a time, instead of a completion.
    raw_frames: tuple[bytes, ...] | None = None
    content_type: str = "text/event-stream"
    # ``data: [DONE]`` after the chunks. With ``finish_reason=None`` there is no final chunk either.
    send_done: bool = True


def make_usage(
    prompt_tokens: int,
    completion_tokens: int,
    *,
    cached_tokens: int | None = None,
    reasoning_tokens: int | None = None,
) -> JSON:
    """A Chat Completions ``usage`` dict; the details objects only when asked for."""
    usage: JSON = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    if reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return usage


def text_reply(
    text: str,
    *,
    finish_reason: str = "stop",
    usage: JSON | None = None,
    pieces: int | None = None,
) -> Reply:
    """Plain assistant text, streamed as several content deltas.

    Without ``pieces`` the text is split at word boundaries (like real token
    streams); with ``pieces`` it is cut into that many near-equal parts, which can
    split multi-code-point characters -- useful to test reassembly.
    """
    deltas = [_role_delta(content=""), *({"content": p} for p in _split(text, pieces))]
    return Reply(deltas=tuple(deltas), finish_reason=finish_reason, usage=usage)


def tool_calls_reply(
    calls: Sequence[tuple[str, str, str]],
    *,
    usage: JSON | None = None,
    text: str | None = None,
) -> Reply:
    """One or more (parallel) function calls, each ``(call_id, name, arguments_json)``.

    Streamed the way OpenAI does: a header delta per call (id, type, name, empty
    arguments), then the arguments in at least two fragments, calls one after the
    other with ``index`` 0, 1, ...  ``text`` optionally precedes the calls, as
    some models say something before calling a tool.
    """
    deltas: list[JSON] = []
    if text is not None:
        deltas.append(_role_delta(content=""))
        deltas.extend({"content": p} for p in _split(text, None))
    for index, (call_id, name, arguments) in enumerate(calls):
        header = _tool_call_delta(index, {"name": name, "arguments": ""}, call_id=call_id)
        if not deltas:
            # OpenAI puts the role on the first tool-call delta itself.
            header = {**_role_delta(content=None), **header}
        deltas.append(header)
        deltas.extend(_tool_call_delta(index, {"arguments": f}) for f in _argument_fragments(arguments))
    return Reply(deltas=tuple(deltas), finish_reason="tool_calls", usage=usage)


def reasoning_reply(
    reasoning: str,
    text: str,
    *,
    field: Literal["reasoning_content", "reasoning"] = "reasoning_content",
    usage: JSON | None = None,
) -> Reply:
    """Reasoning deltas in ``delta[field]`` (DeepSeek/vLLM use ``reasoning_content``,
    Ollama/OpenRouter ``reasoning``), then the visible answer as content deltas."""
    deltas: list[JSON] = [_role_delta(content="")]
    deltas.extend({field: p} for p in _split(reasoning, None))
    deltas.extend({"content": p} for p in _split(text, None))
    return Reply(deltas=tuple(deltas), finish_reason="stop", usage=usage)


def refusal_reply(refusal: str, *, usage: JSON | None = None) -> Reply:
    """A refusal streamed through ``delta.refusal``, as OpenAI does with structured outputs."""
    deltas = [{**_role_delta(content=None), "refusal": ""}]
    deltas.extend({"refusal": p} for p in _split(refusal, None))
    return Reply(deltas=tuple(deltas), finish_reason="stop", usage=usage)


def error_reply(
    status: int,
    message: str = "scripted upstream error",
    code: str | None = None,
    *,
    error_type: str | None = None,
) -> Reply:
    """A plain (non-streamed) HTTP error with the OpenAI error envelope."""
    if error_type is None:
        error_type = "server_error" if status >= 500 else "invalid_request_error"
    return Reply(error_status=status, error_body=_error_envelope(message, error_type, code))


def dropped_reply(text: str, after_chunks: int) -> Reply:
    """Starts like ``text_reply`` but kills the TCP connection after ``after_chunks``
    SSE chunks (the role chunk counts): no finish chunk and no ``[DONE]``."""
    return dataclasses.replace(text_reply(text), drop_after=after_chunks)


def reset_reply(text: str, after_chunks: int) -> Reply:
    """Like ``dropped_reply`` but the connection ends with a TCP reset, as a crashed peer's does."""
    return dataclasses.replace(text_reply(text), drop_after=after_chunks, reset=True)


def cut_reply(text: str) -> Reply:
    """The content deltas, then a clean end of the body: no finish chunk and no ``[DONE]``."""
    return dataclasses.replace(text_reply(text), finish_reason=None, send_done=False)


def hanging_reply(seconds: float) -> Reply:
    """Accepts the request and says nothing for ``seconds`` (or until the client hangs up)."""
    return dataclasses.replace(text_reply("too late"), hang_s=seconds)


def raw_reply(*frames: bytes, content_type: str = "text/event-stream", delay_s: float = 0.0) -> Reply:
    """A 200 with exactly these body bytes: malformed SSE, JSON or HTML where SSE was asked for."""
    return Reply(raw_frames=frames, content_type=content_type, delay_s=delay_s)


def slow_reply(text: str, delay_s: float, pieces: int) -> Reply:
    """Like ``text_reply`` but sleeps ``delay_s`` between chunks, so a test has time
    to hang up and then check ``ScriptedUpstream.disconnects``."""
    return dataclasses.replace(text_reply(text, pieces=pieces), delay_s=delay_s)


def _role_delta(*, content: str | None) -> JSON:
    return {"role": "assistant", "content": content}


def _tool_call_delta(index: int, function: JSON, *, call_id: str | None = None) -> JSON:
    call: JSON = {"index": index}
    if call_id is not None:
        call |= {"id": call_id, "type": "function"}
    call["function"] = function
    return {"tool_calls": [call]}


def _split(text: str, pieces: int | None) -> list[str]:
    """Cut ``text`` into stream pieces; joining them always gives back ``text``."""
    if not text:
        return []
    if pieces is None:
        # Every character is either \S or \s, so these matches tile the whole text.
        return re.findall(r"\S+\s*|\s+", text)
    count = max(1, min(pieces, len(text)))
    bounds = [round(i * len(text) / count) for i in range(count + 1)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def _argument_fragments(arguments: str) -> list[str]:
    # At least two fragments so the server under test must really concatenate;
    # roughly 8 characters each, like a tokenizer would produce.
    return _split(arguments, max(2, math.ceil(len(arguments) / 8)))


def _error_envelope(message: str, error_type: str, code: str | None) -> JSON:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Completion:
    """Identity of one played reply: what every chunk of it repeats."""

    id: str
    created: int
    model: str


def _chunk(completion: _Completion, choices: list[JSON], include_usage: bool) -> JSON:
    chunk: JSON = {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
        "choices": choices,
    }
    if include_usage:
        # With include_usage OpenAI sends "usage": null on every chunk but the last.
        chunk["usage"] = None
    return chunk


def _stream_chunks(reply: Reply, completion: _Completion, include_usage: bool) -> list[JSON]:
    """All chunk objects of a streamed reply, final and usage chunks included."""

    def choice(delta: JSON, finish_reason: str | None) -> JSON:
        return {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}

    chunks = [_chunk(completion, [choice(d, None)], include_usage) for d in reply.deltas]
    if reply.finish_reason is not None:
        chunks.append(_chunk(completion, [choice({}, reply.finish_reason)], include_usage))
    if include_usage and reply.usage is not None:
        chunks.append(_chunk(completion, [], include_usage) | {"usage": reply.usage})
    return chunks


def _sse(data: str) -> bytes:
    return f"data: {data}\n\n".encode()


def _aggregate_message(deltas: Iterable[JSON]) -> JSON:
    """Fold streamed deltas into the ``message`` of a non-streamed completion."""
    texts: dict[str, list[str]] = {}
    calls: dict[int, JSON] = {}
    for delta in deltas:
        for key, value in delta.items():
            if key == "tool_calls":
                for call in value:
                    _merge_tool_call(calls, call)
            elif key != "role" and isinstance(value, str):
                texts.setdefault(key, []).append(value)
    message: JSON = {"role": "assistant", **{k: "".join(v) for k, v in texts.items()}}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    if not message.get("content") and (calls or message.get("refusal")):
        message["content"] = None  # OpenAI reports content null, not "", next to calls/refusals
    message.setdefault("content", None)
    message.setdefault("refusal", None)
    return message


def _merge_tool_call(calls: dict[int, JSON], fragment: JSON) -> None:
    call = calls.setdefault(
        fragment["index"], {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
    )
    if "id" in fragment:
        call["id"] = fragment["id"]
    function = fragment.get("function", {})
    for key in ("name", "arguments"):
        call["function"][key] += function.get(key) or ""


def _completion_object(reply: Reply, completion: _Completion) -> JSON:
    body: JSON = {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [
            {
                "index": 0,
                "message": _aggregate_message(reply.deltas),
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
    }
    if reply.usage is not None:
        body["usage"] = reply.usage
    return body


def _fake_vector(text: str) -> list[float]:
    # Multiples of 1/128 in [-1, 1) are exact in float32, so the base64 encoding
    # the SDK asks for by default round-trips to exactly the same numbers.
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 128) / 128.0 for b in digest[:EMBEDDING_DIMENSIONS]]


def _embedding_inputs(raw: Any) -> list[str]:
    """Normalise every accepted ``input`` form (str, [str], [int], [[int]]) to strings."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return [json.dumps(raw)]  # a single pre-tokenised input
    if isinstance(raw, list):
        return [x if isinstance(x, str) else json.dumps(x) for x in raw]
    raise ValueError("input must be a string, a list of strings or token arrays")


# --------------------------------------------------------------------------- playing


class _DropConnection(Exception):
    """Raised inside the ASGI app after the response started, so that uvicorn
    closes the transport and the client sees a truncated chunked body."""


class _PlayedStream(StreamingResponse):
    """An SSE response that also tells how it ended.

    Starlette's own StreamingResponse swallows a client disconnect silently, but
    tests need to know the server under test really hung up, so we watch
    ``receive()`` for ``http.disconnect`` ourselves while streaming.
    """

    def __init__(self, frames: AsyncIterator[bytes], on_end: Callable[[StreamOutcome], None]) -> None:
        super().__init__(frames, media_type="text/event-stream", headers={"cache-control": "no-cache"})
        self._on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.ensure_future(self.stream_response(send))
        watching = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait({streaming, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also reached when uvicorn cancels us at shutdown: never leave a task behind.
            watching.cancel()
            if not streaming.done():
                streaming.cancel()
            await asyncio.gather(streaming, watching, return_exceptions=True)
        if streaming.cancelled():
            self._on_end("disconnected")
        else:
            self._finish(streaming)

    def _finish(self, streaming: asyncio.Future[None]) -> None:
        error = streaming.exception()
        if isinstance(error, _DropConnection):
            self._on_end("dropped")
            raise error
        if error is not None:
            raise error
        self._on_end("completed")


class _TruncatedBody(Response):
    """A non-streamed body that is cut off halfway: the non-streaming analogue of a drop."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": bytes(self.body[: len(self.body) // 2]), "more_body": True})
        raise _DropConnection()


def _is_scripted_drop(record: logging.LogRecord) -> bool:
    """Log filter: keep uvicorn from printing a traceback for every intended drop."""
    return not (record.exc_info and isinstance(record.exc_info[1], _DropConnection))


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _play_frames(reply: Reply, chunks: list[JSON], reset: Callable[[], None]) -> AsyncIterator[bytes]:
    frames = [_sse(json.dumps(c, ensure_ascii=False)) for c in chunks]
    limit = len(frames) if reply.drop_after is None else min(reply.drop_after, len(frames))
    pauses = dict(reply.pauses)
    for position, frame in enumerate(frames[:limit]):
        if position and reply.delay_s:
            await asyncio.sleep(reply.delay_s + pauses.get(position, 0.0))
        yield frame
    if reply.drop_after is not None:
        if reply.reset:
            await asyncio.sleep(0.05)  # let the frames leave: an abort discards unsent bytes
            reset()
        raise _DropConnection()
    if reply.send_done:
        yield _sse("[DONE]")


async def _play_raw(reply: Reply) -> AsyncIterator[bytes]:
    for position, frame in enumerate(reply.raw_frames or ()):
        if position and reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        yield frame


def _reset_transport(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP reset: SO_LINGER 0 makes the kernel send RST instead of FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Connections:
    """The fake's keep-alive connections, and what it does to them: it can forget a connection
    that sat idle, or that served enough requests, the way a load balancer or a server's
    keep-alive limit does, and reset it when the client sends the next request on it."""

    def __init__(self, reset_idle_after_s: float | None, reset_after_requests: int | None) -> None:
        self.reset_idle_after_s = reset_idle_after_s
        self.reset_after_requests = reset_after_requests
        self.transports: dict[tuple[str, int], asyncio.Transport] = {}
        self.busy: set[tuple[str, int]] = set()
        self.opened = 0
        self.resets = 0

    def stale(self, idle_s: float, served: int) -> bool:
        if self.reset_idle_after_s is not None and idle_s > self.reset_idle_after_s:
            return True
        return self.reset_after_requests is not None and served >= self.reset_after_requests

    def protocol_class(self) -> type[H11Protocol]:
        connections = self

        class _Protocol(H11Protocol):
            _idle_since: float | None = None
            _served = 0

            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(transport)
                connections.opened += 1
                if self.client is not None:
                    connections.transports[self.client] = transport

            def connection_lost(self, exc: Exception | None) -> None:
                if self.client is not None:
                    connections.transports.pop(self.client, None)
                    connections.busy.discard(self.client)
                super().connection_lost(exc)

            def data_received(self, data: bytes) -> None:
                idle_since = self._idle_since
                if idle_since is not None and connections.stale(time.monotonic() - idle_since, self._served):
                    connections.resets += 1
                    _reset_transport(self.transport)
                    return
                self._idle_since = None
                if self.client is not None:
                    connections.busy.add(self.client)
                super().data_received(data)

            def on_response_complete(self) -> None:
                self._served += 1
                self._idle_since = time.monotonic()
                if self.client is not None:
                    connections.busy.discard(self.client)
                super().on_response_complete()

        return _Protocol


# --------------------------------------------------------------------------- server


class ScriptedUpstream:
    """Fake OpenAI-compatible server that plays enqueued replies in FIFO order.

    Usable from sync and async tests alike: it runs in its own thread and event
    loop, so blocking on it never stalls the test's loop (use the ``*_async``
    helper when waiting from async code that must keep the loop running).
    """

    def __init__(self, *, keep_alive_s: float = 5.0, reset_idle_after_s: float | None = None,
                 reset_after_requests: int | None = None) -> None:
        """``keep_alive_s`` is uvicorn's own idle keep-alive (it closes with FIN). With
        ``reset_idle_after_s`` or ``reset_after_requests`` a connection is forgotten silently and
        reset when the next request arrives on it: the race of a close with a request, every time."""
        self._keep_alive_s = keep_alive_s
        self.connections = _Connections(reset_idle_after_s, reset_after_requests)
        self._lock = threading.Lock()
        self._replies: deque[Reply] = deque()
        self._ids = itertools.count(1)
        # Chat completion bodies and their headers, in arrival order.
        self.requests: list[JSON] = []
        self.request_headers: list[dict[str, str]] = []
        self.embedding_requests: list[JSON] = []
        # Moderation: an input containing one of these terms (case-insensitive) is flagged under the
        # term's category. With `moderation_answers_before_failing` set, the calls after that many
        # fail with a 500 (0: all of them).
        self.moderation_terms: dict[str, str] = {}
        self.moderation_answers_before_failing: int | None = None
        self.moderation_requests: list[JSON] = []
        # How every played stream ended, in order; "disconnected" means the client hung up.
        self.stream_outcomes: list[StreamOutcome] = []
        # Without queued replies, the reply `responder` makes for the request (None: a 500).
        self.responder: Callable[[JSON], Reply] | None = None
        # Every streamed call, once it has ended.
        self.call_log: list[UpstreamCall] = []
        self.disconnects = 0
        self.disconnected = threading.Event()
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/moderations", self._moderations, methods=["POST"]),
            ]
        )

    # ----------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ScriptedUpstream:
        if self._thread is not None:
            raise RuntimeError("ScriptedUpstream already started")
        # Binding the socket ourselves gives us the free port with no race.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=self.connections.protocol_class(),
            timeout_keep_alive=self._keep_alive_s,
            loop="asyncio",
            lifespan="off",
            access_log=False,
            log_config=None,  # never reconfigure the test process' logging
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        # addFilter ignores a filter that is already installed, so repeated starts are fine.
        logging.getLogger("uvicorn.error").addFilter(_is_scripted_drop)
        self._thread = threading.Thread(target=self._serve, name=f"scripted-upstream-{self.port}", daemon=True)
        self._thread.start()
        self._wait_until_started()
        return self

    def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def _wait_until_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ScriptedUpstream failed to start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> ScriptedUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- scripting

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        """Replies enqueued but not played yet (tests assert 0 to prove every call happened)."""
        with self._lock:
            return len(self._replies)

    def reset(self) -> None:
        """Forget replies, recordings and disconnects, so one server can serve many tests."""
        with self._lock:
            self._replies.clear()
            self.requests.clear()
            self.request_headers.clear()
            self.embedding_requests.clear()
            self.moderation_terms.clear()
            self.moderation_answers_before_failing = None
            self.moderation_requests.clear()
            self.stream_outcomes.clear()
            self.call_log.clear()
            self.responder = None
            self.disconnects = 0
            self.disconnected.clear()

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        """Block until a client hung up mid-stream; False on timeout."""
        return self.disconnected.wait(timeout)

    async def wait_for_disconnect_async(self, timeout: float = 5.0) -> bool:
        """Like ``wait_for_disconnect`` without blocking the caller's event loop,
        which may be running the server under test that has to do the hanging up."""
        return await asyncio.to_thread(self.disconnected.wait, timeout)

    def wait_for_outcomes(self, count: int, timeout: float = 5.0) -> list[StreamOutcome]:
        """The stream outcomes once `count` are known: an outcome is recorded after the last byte
        is sent, so a client that read the whole stream can be a moment ahead of it."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.stream_outcomes) >= count or time.monotonic() > deadline:
                    return list(self.stream_outcomes)
            time.sleep(0.005)

    def _next_reply(self) -> Reply | None:
        with self._lock:
            return self._replies.popleft() if self._replies else None

    def _record_outcome(self, outcome: StreamOutcome) -> None:
        with self._lock:
            self.stream_outcomes.append(outcome)
            if outcome == "disconnected":
                self.disconnects += 1
                self.disconnected.set()

    # ----------------------------------------------------------------- endpoints

    async def _chat_completions(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error_response(400, "request body is not valid JSON", "invalid_request_error")
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(dict(request.headers))
        reply = self._next_reply()
        if reply is None and self.responder is not None:
            reply = self.responder(body)
        if reply is None:
            return _error_response(500, "no scripted reply left", "server_error")
        if reply.hang_s:
            await _sleep_unless_disconnected(request, reply.hang_s)
        if reply.raw_frames is not None:
            return StreamingResponse(_play_raw(reply), media_type=reply.content_type)
        if reply.error_status is not None:
            return JSONResponse(reply.error_body, status_code=reply.error_status)
        completion = _Completion(f"chatcmpl-fake-{next(self._ids)}", int(time.time()), str(body.get("model", "")))
        if body.get("stream"):
            call = UpstreamCall(body, request.headers.get("authorization", ""), "dropped")
            return self._stream(reply, completion, _wants_usage(body), request.scope.get("client"), call)
        return await self._complete(reply, completion)

    def _stream(self, reply: Reply, completion: _Completion, include_usage: bool, client: Any,
                call: UpstreamCall) -> Response:
        chunks = _stream_chunks(reply, completion, include_usage)

        def ended(outcome: StreamOutcome) -> None:
            self._record_outcome(outcome)
            with self._lock:
                self.call_log.append(dataclasses.replace(call, outcome=outcome))

        def reset() -> None:
            transport = self.connections.transports.get(tuple(client)) if client else None
            if transport is not None:
                _reset_transport(transport)

        return _PlayedStream(_play_frames(reply, chunks, reset), ended)

    async def _complete(self, reply: Reply, completion: _Completion) -> Response:
        # Keep the timing of slow replies: the whole answer takes as long as the stream would.
        await asyncio.sleep(reply.delay_s * max(0, len(reply.deltas)))
        body = _completion_object(reply, completion)
        if reply.drop_after is not None:
            return _TruncatedBody(json.dumps(body).encode(), media_type="application/json")
        return JSONResponse(body)

    async def _models(self, request: Request) -> Response:
        model = {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _embeddings(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.embedding_requests.append(body)
        try:
            inputs = _embedding_inputs(body.get("input"))
        except ValueError as exc:
            return _error_response(400, str(exc), "invalid_request_error")
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": _encode_vector(_fake_vector(t), as_base64)}
            for i, t in enumerate(inputs)
        ]
        tokens = sum(len(t.split()) for t in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse({"object": "list", "data": data, "model": body.get("model", ""), "usage": usage})


    async def _moderations(self, request: Request) -> Response:
        """OpenAI's moderation shape: one result per input string, flagged by `moderation_terms`."""
        body = await request.json()
        with self._lock:
            self.moderation_requests.append(body)
            terms, answers = dict(self.moderation_terms), self.moderation_answers_before_failing
            failing = answers is not None and len(self.moderation_requests) > answers
        if failing:
            return _error_response(500, "scripted moderation failure", "server_error")
        raw = body.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        results = []
        for text in inputs:
            hits = {category for term, category in terms.items() if term.lower() in str(text).lower()}
            results.append({"flagged": bool(hits), "categories": {c: True for c in sorted(hits)},
                            "category_scores": {c: 0.99 for c in sorted(hits)}})
        return JSONResponse({"id": f"modr-fake-{next(self._ids)}", "model": body.get("model", ""),
                             "results": results})


async def _sleep_unless_disconnected(request: Request, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not await request.is_disconnected():
        await asyncio.sleep(0.02)


def _wants_usage(body: JSON) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _encode_vector(vector: list[float], as_base64: bool) -> list[float] | str:
    if not as_base64:
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _error_response(status: int, message: str, error_type: str) -> Response:
    return JSONResponse(_error_envelope(message, error_type, None), status_code=status)
