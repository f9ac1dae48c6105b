"""The benchmark's own parsers: chunked decoding, marker counting, request and reply heads."""

from __future__ import annotations

import pytest
from bench.fake_replies import ModelSpec, http_chunk, parse_model, text_stream
from bench.wire import ChunkedDecoder, MarkerCounter, parse_response_head, take_request


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("piece_size", [1, 2, 3, 7, 64, 10_000])
def test_chunked_decoder_returns_the_payload_however_the_bytes_are_split(piece_size: int) -> None:
    payloads = [b"data: one\n\n", b"data: two\n\n", b"x" * 300]
    raw = b"".join(http_chunk(p) for p in payloads) + b"0\r\n\r\n"
    decoder = ChunkedDecoder()
    out = b"".join(decoder.feed(piece) for piece in _pieces(raw, piece_size))
    assert out == b"".join(payloads)
    assert decoder.done


def test_chunked_decoder_is_not_done_before_the_last_chunk() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(http_chunk(b"data: one\n\n"))
    assert not decoder.done


@pytest.mark.parametrize("piece_size", [1, 5, 13, 1000])
def test_marker_counter_counts_a_marker_split_across_reads_once(piece_size: int) -> None:
    stream = b"".join(text_stream("m", 20, with_usage=True).tokens)
    counter = MarkerCounter(b'"delta":{"content":"')
    found = sum(counter.feed(piece) for piece in _pieces(stream, piece_size))
    assert found == counter.count == 20


def test_marker_counter_never_counts_an_overlap_twice() -> None:
    counter = MarkerCounter(b"aa")
    assert counter.feed(b"aa") == 1
    assert counter.feed(b"a") == 0
    assert counter.feed(b"a") == 1
    assert counter.count == 2


def test_take_request_waits_for_the_whole_body_then_consumes_it() -> None:
    raw = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
    buffer = bytearray(raw[:-2])
    assert take_request(buffer) is None
    buffer += raw[-2:] + b"GET /v1/models HTTP/1.1\r\n\r\n"
    head, body = take_request(buffer) or (None, None)
    assert head is not None and (head.method, head.path, body) == ("POST", "/v1/chat/completions", b"body")
    second = take_request(buffer)
    assert second is not None and second[0].path == "/v1/models" and not buffer


def test_parse_response_head_reads_status_framing_and_keep_alive() -> None:
    head = parse_response_head(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 12\r\nConnection: close")
    assert (head.status, head.content_length, head.chunked, head.keep_alive) == (502, 12, False, False)
    chunked = parse_response_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked")
    assert chunked.chunked and chunked.keep_alive and chunked.content_length is None


def test_parse_model_reads_tokens_and_delay_and_keeps_defaults_otherwise() -> None:
    default = ModelSpec(tokens=256, delay_ms=0.0)
    assert parse_model("openai/bench-t32-d2.5", default) == ModelSpec(32, 2.5)
    assert parse_model("gpt-4o", default) == default
