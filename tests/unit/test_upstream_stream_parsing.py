"""Reading an upstream chat stream: SSE `data:` lines split anywhere, error chunks and error bodies."""

from __future__ import annotations

import pytest

from riposte.errors import UpstreamError
from riposte.inference.chat_stream import parse_chunk, parse_chunks, status_error, young_batches
from riposte.inference.sse_decoder import SseDataDecoder

BODY = (b'data: {"a": 1}\n\n'
        b": keep-alive comment\n\n"
        b'data:{"b": 2}\r\n\r\n'
        b"event: ignored\n"
        b'data: {"c": 3}\n\n'
        b"data: [DONE]\n\n")


@pytest.mark.parametrize("piece_size", [1, 2, 5, 17, 1000])
def test_data_lines_come_out_whole_however_the_body_is_split(piece_size: int) -> None:
    decoder = SseDataDecoder()
    payloads = [p for i in range(0, len(BODY), piece_size) for p in decoder.feed(BODY[i:i + piece_size])]
    payloads += decoder.close()
    assert payloads == [b'{"a": 1}', b'{"b": 2}', b'{"c": 3}']


def test_a_last_line_without_newline_is_not_lost() -> None:
    decoder = SseDataDecoder()
    assert decoder.feed(b'data: {"a": 1}\n\ndata: {"b": 2}') == [b'{"a": 1}']
    assert decoder.close() == [b'{"b": 2}']


def test_an_error_chunk_becomes_an_upstream_error_with_its_code() -> None:
    with pytest.raises(UpstreamError) as caught:
        parse_chunk(b'{"error": {"message": "overloaded", "code": "server_busy"}}')
    assert "overloaded" in caught.value.message
    assert caught.value.code == "server_busy"


def test_a_chunk_with_choices_is_returned_as_is() -> None:
    assert parse_chunk(b'{"choices": [], "error": null}') == {"choices": [], "error": None}


@pytest.mark.parametrize(("status", "mapped"), [(400, 400), (429, 429), (401, 502), (500, 502), (503, 502)])
def test_status_errors_keep_client_mistakes_and_map_the_rest_to_502(status: int, mapped: int) -> None:
    error = status_error(status, b'{"error": {"message": "backend exploded", "type": "server_error"}}')
    assert error.status_code == mapped
    assert error.message.startswith(f"upstream returned {status}: backend exploded")


@pytest.mark.parametrize(("status", "body", "error_type", "code"), [
    (400, b'{"error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}}',
     "invalid_request_error", "context_length_exceeded"),
    # vLLM's envelope: its own type name, the status as the code.
    (400, b'{"object": "error", "message": "bad", "type": "BadRequestError", "code": 400}', "invalid_request_error",
     "upstream_error"),
    (429, b'{"error": {"message": "slow down", "type": "tokens", "code": "rate_limit_exceeded"}}', "requests",
     "rate_limit_exceeded"),
    (404, b"no such model", "invalid_request_error", "upstream_error"),
    (500, b'{"error": {"message": "boom", "type": "server_error", "code": "internal"}}', "server_error",
     "upstream_error"),
])
def test_a_client_mistake_the_backend_caught_is_typed_as_one(status: int, body: bytes, error_type: str,
                                                            code: str) -> None:
    error = status_error(status, body)
    assert (error.error_type, error.code, error.param) == (error_type, code, None)


def test_a_401_says_to_check_the_api_key() -> None:
    assert "OPENAI_API_KEY" in status_error(401, b"bad key").message
    assert "API key" not in status_error(403, b"forbidden").message


def test_a_status_error_with_a_plain_text_body_quotes_the_text() -> None:
    assert status_error(502, b"Bad Gateway\n").message == "upstream returned 502: Bad Gateway"


def test_a_status_error_from_the_sdk_error_object_uses_its_message() -> None:
    assert status_error(404, {"message": "no such model", "code": "model_not_found"}).message == \
        "upstream returned 404: no such model"


def test_the_decoder_knows_when_the_upstream_said_done() -> None:
    decoder = SseDataDecoder()
    decoder.feed(b'data: {"a": 1}\n\n')
    assert not decoder.done
    decoder.feed(b"data: [DO")
    assert not decoder.done, "a partial line is not the end"
    decoder.feed(b"NE]\n\n")
    assert decoder.done


def test_chunks_before_a_malformed_one_in_the_same_read_are_kept() -> None:
    batch, error = parse_chunks([b'{"a": 1}', b'{"b": 2}', b"{not json", b'{"c": 3}'])
    assert batch == [{"a": 1}, {"b": 2}]
    assert error is not None and "malformed chunk" in error.message
    assert parse_chunks([b'{"a": 1}']) == ([{"a": 1}], None)


def test_a_young_streams_batches_grow_from_four_and_later_ones_are_whole() -> None:
    burst = [{"n": n} for n in range(300)]
    pieces, after = young_batches(burst, 4)
    assert [len(piece) for piece in pieces] == [4, 8, 16, 32, 64, 176]
    assert [chunk for piece in pieces for chunk in piece] == burst
    assert after == 256
    assert young_batches(burst[:3], 4) == ([burst[:3]], 8)
    assert young_batches(burst, 128) == ([burst], 256)
    assert young_batches([], 4) == ([], 4)
