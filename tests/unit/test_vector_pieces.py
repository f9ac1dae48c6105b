"""Pure pieces of vector stores: filter parsing, chunking, text extraction, rank fusion."""

from __future__ import annotations

from typing import Any

import pytest

from riposte.errors import InvalidRequestError
from riposte.vectors.chunking import AUTO, ChunkingStrategy, chunk_text, count_tokens, parse_chunking_strategy
from riposte.vectors.extract import ExtractionError, extract_text
from riposte.vectors.filters import Comparison, Compound, parse_filter
from riposte.vectors.ranking import HybridWeights, keyword_score, query_words, reciprocal_rank_fusion


def test_filters_parse_into_a_tree() -> None:
    parsed = parse_filter({"type": "or", "filters": [
        {"type": "in", "key": "region", "value": ["us", 5]},
        {"type": "and", "filters": [{"type": "gte", "key": "date", "value": 1}, {"type": "eq", "key": "ok",
                                                                                "value": True}]}]})
    assert parsed == Compound("or", (Comparison("region", "in", ("us", 5)), Compound("and", (
        Comparison("date", "gte", 1), Comparison("ok", "eq", True)))))


@pytest.mark.parametrize(("raw", "param"), [
    ([], "filters"),
    ({"type": "between", "key": "a", "value": 1}, "filters.type"),
    ({"type": "eq", "value": 1}, "filters.key"),
    ({"type": "eq", "key": 'a"b', "value": 1}, "filters.key"),
    ({"type": "eq", "key": "a"}, "filters.value"),
    ({"type": "eq", "key": "a", "value": None}, "filters.value"),
    ({"type": "lt", "key": "a", "value": False}, "filters.value"),
    ({"type": "in", "key": "a", "value": []}, "filters.value"),
    ({"type": "nin", "key": "a", "value": [True]}, "filters.value"),
    ({"type": "and", "filters": [{"type": "eq", "key": "a", "value": 1}, {"type": "or"}]},
     "filters.filters[1].filters"),
    ({"type": "eq", "key": "a", "value": 1, "extra": 2}, "filters.extra"),
])
def test_bad_filters_name_the_exact_parameter(raw: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_filter(raw)
    assert raised.value.param == param


def test_chunks_overlap_and_the_last_one_reaches_the_end() -> None:
    text = " ".join(f"word{n}" for n in range(400))
    strategy = ChunkingStrategy(max_chunk_size_tokens=100, chunk_overlap_tokens=40)
    chunks = chunk_text(text, strategy)
    total = count_tokens(text)
    assert all(chunk.token_count == 100 for chunk in chunks[:-1])
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    assert len(chunks) == 1 + -(-(total - 100) // 60)
    assert chunks[-1].text.endswith("word399")
    assert chunks[0].text.startswith("word0") and chunks[1].text in text


def test_short_and_empty_texts() -> None:
    (only,) = chunk_text("US technical updates for Q2 2023. New features deployed in the US region.", AUTO)
    assert only.token_count == 18
    assert chunk_text("   \n", AUTO) == []


def test_chunk_edges_never_split_a_character() -> None:
    text = "é🙂" * 300
    for chunk in chunk_text(text, ChunkingStrategy(max_chunk_size_tokens=101, chunk_overlap_tokens=0)):
        assert "\ufffd" not in chunk.text and chunk.text in text


@pytest.mark.parametrize(("raw", "expected"), [
    (None, AUTO), ({"type": "auto"}, AUTO),
    ({"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 100}},
     ChunkingStrategy(200, 100)),
])
def test_chunking_strategies(raw: Any, expected: ChunkingStrategy) -> None:
    assert parse_chunking_strategy(raw) == expected
    assert AUTO.as_object() == {"type": "static", "static": {"max_chunk_size_tokens": 800,
                                                             "chunk_overlap_tokens": 400}}


@pytest.mark.parametrize(("raw", "param"), [
    ({"type": "static", "static": {"max_chunk_size_tokens": 5000, "chunk_overlap_tokens": 0}},
     "chunking_strategy.static.max_chunk_size_tokens"),
    ({"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101}},
     "chunking_strategy.static.chunk_overlap_tokens"),
    ({"type": "static"}, "chunking_strategy.static"),
    ({"type": "fancy"}, "chunking_strategy.type"),
])
def test_bad_chunking_strategies(raw: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_chunking_strategy(raw)
    assert raised.value.param == param


def minimal_pdf(text: str) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 100] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        None,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    stream = f"BT /F1 12 Tf 10 50 Td ({text}) Tj ET".encode()
    objects[3] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + (body or b"") + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("a.txt", b"plain text", "plain text"),
    ("b.MD", "\ufeff# Title".encode(), "# Title"),
    ("c.csv", b"a,b\n1,2\n", "a,b\n1,2\n"),
    ("d.json", b'{"k": [1, 2]}', '{"k": [1, 2]}'),
    ("e.html", b"<html><head><title>T</title><script>x()</script></head><body><h1>Head</h1><p>One &amp; "
               b"<b>two</b></p></body></html>", "Head\nOne & two"),
    ("f.txt", "caf\xe9 cr\xe8me br\xfbl\xe9e, d\xe9j\xe0 vu".encode("cp1252"), "café crème brûlée, déjà vu"),
    ("g.pdf", minimal_pdf("Hello from a PDF"), "Hello from a PDF"),
    ("no_extension", minimal_pdf("Sniffed"), "Sniffed"),
])
def test_text_extraction(name: str, data: bytes, expected: str) -> None:
    assert extract_text(name, data).strip() == expected.strip()


@pytest.mark.parametrize(("name", "data", "code"), [
    ("image.png", b"\x89PNG", "unsupported_file"),
    ("broken.json", b"{nope", "invalid_file"),
    ("broken.pdf", b"%PDF-1.4 garbage", "invalid_file"),
])
def test_unusable_files_fail_with_a_code(name: str, data: bytes, code: str) -> None:
    with pytest.raises(ExtractionError) as raised:
        extract_text(name, data)
    assert raised.value.code == code


def test_rank_fusion_scales_into_zero_to_one() -> None:
    fused = reciprocal_rank_fusion(["a", "b", "c"], ["b", "d"])
    assert [key for key, _ in fused] == ["b", "a", "d", "c"]
    assert fused[0][1] == pytest.approx((1 / 62 + 1 / 61) / (2 / 61))
    assert all(0 < score <= 1 for _, score in fused)
    assert reciprocal_rank_fusion(["a"], ["a"])[0][1] == pytest.approx(1.0)
    only_text = reciprocal_rank_fusion(["a", "b"], ["b"], HybridWeights(embedding=0, text=1))
    assert only_text[0] == ("b", pytest.approx(1.0))


def test_keyword_helpers() -> None:
    assert query_words('What "is" OR NEAR(x) the_best? the') == ["what", "is", "or", "near", "x", "the_best", "the"]
    assert keyword_score(0) == 0 and 0 < keyword_score(3) < 1 and keyword_score(-1) == 0
