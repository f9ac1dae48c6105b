"""Citation markers are cut from streamed text however the deltas split them."""

from __future__ import annotations

import pytest

from riposte.engine.citation_filter import CitationFilter

FILES = {"file-abc": "a.txt", "file-xyz": "x.txt"}
TEXT = "Maverick has 128 experts <|file-abc|>. EU grew <|file-xyz|><|file-abc|>! Unknown <|file-nope|>."
CLEAN = "Maverick has 128 experts. EU grew! Unknown."


def run(deltas: list[str]) -> tuple[str, list[dict[str, object]]]:
    citations = CitationFilter(FILES)
    pieces: list[str] = []
    annotations: list[dict[str, object]] = []
    for delta in deltas:
        clean, found = citations.feed(delta)
        pieces.append(clean)
        annotations += found
    clean, found = citations.flush()
    return "".join(pieces) + clean, annotations + found


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 1000])
def test_markers_vanish_whatever_the_delta_size(size: int) -> None:
    text, annotations = run([TEXT[i:i + size] for i in range(0, len(TEXT), size)])
    assert text == CLEAN
    assert annotations == [
        {"type": "file_citation", "file_id": "file-abc", "filename": "a.txt", "index": 24},
        {"type": "file_citation", "file_id": "file-xyz", "filename": "x.txt", "index": 33},
        {"type": "file_citation", "file_id": "file-abc", "filename": "a.txt", "index": 33},
    ]
    assert CLEAN[24] == "." and CLEAN[33] == "!"


def test_text_that_only_looks_like_a_marker_start_is_released() -> None:
    assert run(["a <b and <| not a marker", " x"]) == ("a <b and <| not a marker x", [])


def test_trailing_space_is_kept_when_no_marker_follows() -> None:
    assert run(["one ", "two"]) == ("one two", [])
