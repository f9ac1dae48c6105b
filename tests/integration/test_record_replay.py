"""Record live traffic, then replay it with no upstream at all, scoped to the recording test."""

from __future__ import annotations

from pathlib import Path

import openai
import orjson
import pytest

from riposte.config import InferenceMode, ProviderConfig
from tests.conftest import ServerFactory
from tests.fakes.scripted_upstream import ScriptedUpstream, make_usage, text_reply
from tests.integration.sdk import sdk


def test_recorded_turns_replay_offline_under_their_scope(
    make_server: ServerFactory, upstream: ScriptedUpstream, tmp_path: Path, riposte_scope_headers: dict[str, str]
) -> None:
    recordings = tmp_path / "recordings"
    provider = ProviderConfig(name="fake", base_url=upstream.base_url)
    upstream.enqueue(text_reply("recorded answer", usage=make_usage(4, 2)))
    recorder = make_server(inference_mode=InferenceMode.RECORD, recordings_dir=recordings, providers=[provider])
    live = sdk(recorder, default_headers=riposte_scope_headers).responses.create(model="fake/m", input="question")

    [written] = recordings.glob("*.json")
    document = orjson.loads(written.read_bytes())
    assert document["test_id"] == riposte_scope_headers["x-riposte-replay-scope"]
    assert document["request"]["endpoint"] == "/v1/chat/completions"
    assert document["response"]["is_streaming"] is True

    upstream.stop()  # replay must not need it
    replayer = make_server(inference_mode=InferenceMode.REPLAY, recordings_dir=recordings, providers=[provider])
    replayed = sdk(replayer, default_headers=riposte_scope_headers).responses.create(model="fake/m", input="question")
    assert replayed.output_text == live.output_text == "recorded answer"
    assert replayed.usage is not None and replayed.usage.input_tokens == 4


def test_record_if_missing_records_once_then_replays(
    make_server: ServerFactory, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    server = make_server(inference_mode=InferenceMode.RECORD_IF_MISSING, recordings_dir=tmp_path / "rec",
                         providers=[ProviderConfig(name="fake", base_url=upstream.base_url)])
    upstream.enqueue(text_reply("only once"))
    client = sdk(server)
    first = client.responses.create(model="fake/m", input="same question")
    second = client.responses.create(model="fake/m", input="same question")
    assert first.output_text == second.output_text == "only once"
    assert len(upstream.requests) == 1


def test_embeddings_are_recorded_and_replayed(
    make_server: ServerFactory, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    provider = ProviderConfig(name="fake", base_url=upstream.base_url)
    recorder = make_server(inference_mode=InferenceMode.RECORD, recordings_dir=tmp_path / "rec", providers=[provider])
    live = sdk(recorder).embeddings.create(model="fake/emb", input="hello")
    replayer = make_server(inference_mode=InferenceMode.REPLAY, recordings_dir=tmp_path / "rec", providers=[provider])
    replayed = sdk(replayer).embeddings.create(model="fake/emb", input="hello")
    assert replayed.data[0].embedding == live.data[0].embedding


def test_replay_miss_in_a_stream_fails_the_response_with_the_diagnosis(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server(inference_mode=InferenceMode.REPLAY, recordings_dir=tmp_path / "empty",
                         providers=[ProviderConfig(name="fake", base_url="http://127.0.0.1:9/v1")])
    events = list(sdk(server).responses.create(model="fake/m", input="never recorded", stream=True))
    assert events[-1].type == "response.failed"
    error = next(e for e in events if e.type == "error")
    assert error.code == "recording_not_found" and "request hash" in error.message
    with pytest.raises(openai.APIStatusError):
        sdk(server).responses.create(model="fake/m", input="never recorded")


def test_compaction_summaries_are_recorded_and_replayed(
    make_server: ServerFactory, upstream: ScriptedUpstream, tmp_path: Path, riposte_scope_headers: dict[str, str]
) -> None:
    provider = ProviderConfig(name="fake", base_url=upstream.base_url)
    history = [{"role": "user", "content": f"Fact {n}: the sky is blue on day {n}."} for n in range(30)]
    params = {"model": "fake/m", "input": [*history, {"role": "user", "content": "Summarize?"}],
              "context_management": [{"type": "compaction", "compact_threshold": 100}]}
    upstream.enqueue(text_reply("The sky was blue for 30 days."), text_reply("It was blue."))
    recorder = make_server(inference_mode=InferenceMode.RECORD, recordings_dir=tmp_path / "rec", providers=[provider])
    live = sdk(recorder, default_headers=riposte_scope_headers).responses.create(**params)  # type: ignore[call-overload]
    assert len(list((tmp_path / "rec").glob("*.json"))) == 2  # the summary call and the turn's call

    upstream.stop()
    replayer = make_server(inference_mode=InferenceMode.REPLAY, recordings_dir=tmp_path / "rec", providers=[provider])
    replayed = sdk(replayer, default_headers=riposte_scope_headers).responses.create(**params)  # type: ignore[call-overload]
    assert [item.type for item in replayed.output] == [item.type for item in live.output] == ["compaction", "message"]
    assert replayed.output_text == live.output_text == "It was blue."
