"""Recording normalization, matching and miss diagnostics."""

from __future__ import annotations

from pathlib import Path

import orjson

from riposte.inference.recording import describe_differences, loose_match_key, match_key, normalize_body
from riposte.inference.recording_store import RecordingStore
from tests.conftest import SEED_RECORDINGS

CHAT = "/v1/chat/completions"


def test_floats_and_long_decimals_in_text_round_to_five_places() -> None:
    body = {"temperature": 0.7000000001, "messages": [{"role": "user", "content": "pi is 3.14159265"}]}
    assert normalize_body(body) == {"temperature": 0.7, "messages": [{"role": "user", "content": "pi is 3.14159"}]}


def test_a_single_text_part_matches_a_string_content() -> None:
    as_parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    as_string = {"messages": [{"role": "user", "content": "hi"}]}
    assert match_key(CHAT, as_parts) == match_key(CHAT, as_string)


def test_file_search_scores_attributes_and_ids_are_ignored() -> None:
    def tool_text(score: str, file_id: str) -> dict[str, object]:
        text = (f"[1] document_id: {file_id}, score: {score}, attributes: {{'region': 'us'}} "
                f"(cite as <|{file_id}|>)\nUS news.\n")
        return {"messages": [{"role": "tool", "content": [{"type": "text", "text": text}]}]}

    assert match_key(CHAT, tool_text("0.91", "file-1")) == match_key(CHAT, tool_text("0.77", "file-abc"))


def test_loose_key_ignores_stream_options_only() -> None:
    base = {"model": "m", "messages": [], "stream": True}
    with_options = {**base, "stream_options": {"include_usage": True}}
    assert loose_match_key(CHAT, with_options) == match_key(CHAT, base)
    assert match_key(CHAT, with_options) != match_key(CHAT, base)


def test_scope_prefers_its_own_recording_among_equal_requests(tmp_path: Path) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}], "stream": True}
    for test_id, answer in (("tests/a", "A"), ("tests/b", "B")):
        document = {"test_id": test_id, "request": {"endpoint": CHAT, "body": body},
                    "response": {"is_streaming": True, "body": [{"__data__": {"answer": answer}}]}}
        (tmp_path / f"{answer}.json").write_bytes(orjson.dumps(document))
    store = RecordingStore(tmp_path)

    assert store.find(CHAT, body, "tests/b").test_id == "tests/b"  # type: ignore[union-attr]
    assert store.find(CHAT, body, None).test_id == "tests/a"  # type: ignore[union-attr]
    assert store.find(CHAT, body, "tests/unknown").test_id == "tests/a"  # type: ignore[union-attr]


def test_scope_prefers_its_own_older_recording_over_anothers_exact_one(tmp_path: Path) -> None:
    base = {"model": "m", "messages": [], "stream": True}
    with_options = {**base, "stream_options": {"include_usage": True}}
    exact = {"test_id": "other", "request": {"endpoint": CHAT, "body": with_options},
             "response": {"is_streaming": True, "body": []}}
    older = {"test_id": "mine", "request": {"endpoint": CHAT, "body": base},
             "response": {"is_streaming": True, "body": []}}
    (tmp_path / "exact.json").write_bytes(orjson.dumps(exact))
    (tmp_path / "older.json").write_bytes(orjson.dumps(older))
    found = RecordingStore(tmp_path).find(CHAT, {**base, "stream_options": {"include_usage": True}}, "mine")
    assert found is not None and found.test_id == "mine"


def test_write_then_find_round_trips_in_the_shared_format(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}], "stream": True}
    path = store.write(endpoint=CHAT, url="http://x/v1/chat/completions", body=body, response_body=[{"id": "c1"}],
                       is_streaming=True, type_name="T", scope="tests/x")
    document = orjson.loads(path.read_bytes())
    assert document["test_id"] == "tests/x"
    assert document["response"]["body"] == [{"__type__": "T", "__data__": {"id": "c1"}}]
    assert RecordingStore(tmp_path).find(CHAT, body, None) is not None


def test_miss_error_names_the_closest_recording_and_the_difference() -> None:
    store = RecordingStore(SEED_RECORDINGS)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Which planet is red?"}], "stream": True,
            "stream_options": {"include_usage": True}}
    message = store.miss_error(CHAT, body, None).message
    assert "request hash" in message and CHAT in message
    assert "001_03afc274b0d25d33.json" in message or "003_" in message
    assert "body.messages[0].content" in message


def test_describe_differences_walks_nested_structures() -> None:
    assert describe_differences({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}], "c": 1}) == [
        "body.a[1].b: requested 2, recorded 3", "body.c: only in the recording"]


def test_id_normalization_mapping_is_applied_on_load(tmp_path: Path) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "about file-1"}], "stream": True}
    recorded = {**body, "messages": [{"role": "user", "content": "about file-real-123"}]}
    document = {"request": {"endpoint": CHAT, "body": recorded}, "response": {"is_streaming": True, "body": []},
                "id_normalization_mapping": {"file-1": "file-real-123"}}
    (tmp_path / "r.json").write_bytes(orjson.dumps(document))
    assert RecordingStore(tmp_path).find(CHAT, body, None) is not None
