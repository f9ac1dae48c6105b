"""Citation markers become file_citation annotations (SEED-SYSTEM.md §3.6)."""

from __future__ import annotations

from openai.types.responses.response_output_text import AnnotationFileCitation

from riposte.tools.citations import extract_citations

FILES = {"file-abc": "abc.txt", "file-x_y-1": "x.pdf"}


def test_marker_and_one_preceding_space_are_cut_and_indexed() -> None:
    cited = extract_citations("Maverick has 128 experts <|file-abc|>.", FILES)
    assert cited.text == "Maverick has 128 experts."
    assert cited.annotations == [{"type": "file_citation", "file_id": "file-abc", "filename": "abc.txt",
                                  "index": 24}]
    AnnotationFileCitation.model_validate(cited.annotations[0])


def test_several_markers_index_into_the_cleaned_text() -> None:
    cited = extract_citations("A <|file-abc|>. B  <|file-x_y-1|><|file-abc|>! C", FILES)
    assert cited.text == "A. B ! C"
    assert [(a["file_id"], a["index"]) for a in cited.annotations] == [
        ("file-abc", 1), ("file-x_y-1", 5), ("file-abc", 5)]
    for annotation in cited.annotations:
        assert cited.text[annotation["index"]] in ".!"


def test_unknown_ids_are_removed_without_an_annotation() -> None:
    cited = extract_citations("Made up <|file-nope|>. Real<|file-abc|>", FILES)
    assert cited.text == "Made up. Real"
    assert [a["file_id"] for a in cited.annotations] == ["file-abc"]
    assert cited.annotations[0]["index"] == len("Made up. Real")


def test_text_without_markers_is_unchanged() -> None:
    cited = extract_citations("No <|citations|> here <|file-|", FILES)
    assert (cited.text, cited.annotations) == ("No <|citations|> here <|file-|", [])
