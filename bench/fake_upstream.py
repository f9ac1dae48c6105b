"""The fast fake upstream: an OpenAI-compatible server, run in its own process.

    python -m bench.fake_upstream --port 9100 [--tokens 256] [--delay-ms 0]

It speaks just enough HTTP/1.1 (keep-alive, Content-Length request bodies, chunked replies)
on a bare asyncio protocol, because a framework would cost more per token than the gateway
it is meant to measure. The model name picks the reply shape: `bench-t256-d5` streams 256
tokens 5 ms apart; `-d0` sends the first token with the headers and all the others right after.
Paced streams share one timer per delay, not one per stream, the way a batching inference
server emits one token for every running sequence at each step.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import dataclass
from typing import Any

import orjson

from bench import fake_replies as replies
from bench.fake_replies import ModelSpec, StreamReply
from bench.wire import RequestHead, take_request

NOT_FOUND = replies.json_reply({"error": {"message": "not found", "type": "invalid_request_error"}}, "404 Not Found")
BAD_REQUEST = replies.json_reply({"error": {"message": "bad request", "type": "invalid_request_error"}},
                                 "400 Bad Request")


@dataclass
class _PacedStream:
    transport: asyncio.Transport
    reply: StreamReply
    next_token: int = 1


class _Pacer:
    """Writes the next token of every stream it holds once per tick."""

    def __init__(self, delay_s: float) -> None:
        self._delay_s = delay_s
        self._streams: list[_PacedStream] = []
        self._next_at: float | None = None

    def add(self, stream: _PacedStream) -> None:
        self._streams.append(stream)
        if self._next_at is None:
            loop = asyncio.get_running_loop()
            self._next_at = loop.time() + self._delay_s
            loop.call_at(self._next_at, self._tick)

    def _tick(self) -> None:
        self._streams = [s for s in self._streams if _advance(s)]
        loop = asyncio.get_running_loop()
        if not self._streams:
            self._next_at = None
            return
        assert self._next_at is not None
        # Keep the cadence fixed; if the loop fell behind, do not try to catch up in a burst.
        self._next_at = max(self._next_at + self._delay_s, loop.time())
        loop.call_at(self._next_at, self._tick)


def _advance(stream: _PacedStream) -> bool:
    """Send one more token; False once the stream is over or its client has gone."""
    if stream.transport.is_closing():
        return False
    tokens = stream.reply.tokens
    data = tokens[stream.next_token]
    stream.next_token += 1
    if stream.next_token >= len(tokens):
        stream.transport.write(data + stream.reply.tail)
        return False
    stream.transport.write(data)
    return True


def _write_if_open(transport: asyncio.Transport, data: bytes) -> None:
    if not transport.is_closing():
        transport.write(data)


class FakeUpstream:
    def __init__(self, default: ModelSpec, model_ids: list[str]) -> None:
        self._default = default
        self._models = replies.models(model_ids)
        self._pacers: dict[float, _Pacer] = {}

    def handle(self, transport: asyncio.Transport, head: RequestHead, body: bytes) -> None:
        path = head.path.split("?", 1)[0]
        if head.method == "GET" and path == "/v1/models":
            transport.write(self._models)
        elif head.method == "GET" and path in ("/health", "/v1/health"):
            transport.write(replies.json_reply({"status": "ok"}))
        elif head.method == "POST" and path in ("/v1/chat/completions", "/v1/embeddings"):
            self._post(transport, path, body)
        else:
            transport.write(NOT_FOUND)

    def _post(self, transport: asyncio.Transport, path: str, raw: bytes) -> None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            transport.write(BAD_REQUEST)
            return
        if not isinstance(body, dict):
            transport.write(BAD_REQUEST)
        elif path == "/v1/embeddings":
            transport.write(replies.embeddings(body))
        else:
            self._chat(transport, body)

    def _chat(self, transport: asyncio.Transport, body: dict[str, Any]) -> None:
        model = str(body.get("model", "bench"))
        spec = replies.parse_model(model, self._default)
        tool_call = replies.wants_tool_call(body)
        if not body.get("stream"):
            reply = replies.tool_call_completion(model) if tool_call else replies.text_completion(model, spec.tokens)
            transport.write(reply)
            return
        # `-nousage` in the model name plays a backend that never reports usage (the gateway counts).
        with_usage = bool((body.get("stream_options") or {}).get("include_usage")) and "-nousage" not in model
        stream = replies.tool_call_stream(model, with_usage) if tool_call else \
            replies.text_stream(model, spec.tokens, with_usage)
        # The first token goes out with the headers at once: the fake has no prefill time.
        transport.write(stream.head + stream.tokens[0])
        if spec.delay_ms > 0 and len(stream.tokens) > 1:
            self._pacer(spec.delay_ms / 1000).add(_PacedStream(transport, stream))
            return
        # 0 ms: the rest follows in one write on the next turn of the loop, as from a server whose
        # decoding is instant but whose first token still leaves on its own.
        rest = b"".join(stream.tokens[1:]) + stream.tail
        asyncio.get_running_loop().call_soon(_write_if_open, transport, rest)

    def _pacer(self, delay_s: float) -> _Pacer:
        pacer = self._pacers.get(delay_s)
        if pacer is None:
            pacer = self._pacers[delay_s] = _Pacer(delay_s)
        return pacer


class _Connection(asyncio.Protocol):
    def __init__(self, upstream: FakeUpstream) -> None:
        self._upstream = upstream
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        while (request := take_request(self._buffer)) is not None:
            self._upstream.handle(self._transport, *request)


async def serve(host: str, port: int, upstream: FakeUpstream) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(upstream), host, port, backlog=4096)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_upstream", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=256, help="tokens per reply when the model name does not say")
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="delay between tokens when the model name does not say")
    parser.add_argument("--model", action="append", default=[], help="model id for /v1/models (repeatable)")
    args = parser.parse_args(argv)
    model_ids = args.model or ["bench-t256-d0", "bench-t256-d5", "text-embedding-3-small"]
    upstream = FakeUpstream(ModelSpec(args.tokens, args.delay_ms), model_ids)
    asyncio.run(serve(args.host, args.port, upstream))


if __name__ == "__main__":
    main()
