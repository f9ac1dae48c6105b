"""The recordings pages in Chromium, over the shipped seed recordings (replay mode, authentication
off on loopback: the inspector opens without a login)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from riposte.config import InferenceMode, ProviderConfig, Settings
from riposte.testing.server import RunningServer
from tests.conftest import SEED_RECORDINGS
from tests.integration.test_replay_seeds import QUESTION
from tests.ui.browser import Browser

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def replay_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data: Path = tmp_path_factory.mktemp("inspector-replay")
    settings = Settings(data_dir=data, inference_mode=InferenceMode.REPLAY, recordings_dir=SEED_RECORDINGS,
                        providers=[ProviderConfig(name="openai", base_url="https://api.openai.com/v1")])
    with RunningServer(settings) as server:
        yield server


def test_a_replay_miss_is_compared_with_its_closest_recording(browser: Browser, replay_server: RunningServer) -> None:
    sdk = openai.OpenAI(base_url=replay_server.base_url, api_key="x", max_retries=0)
    hit = sdk.responses.create(model="openai/gpt-4o", input=QUESTION)
    with pytest.raises(openai.InternalServerError):
        sdk.responses.create(model="openai/gpt-4o", input=QUESTION.replace("letter S", "letter J"))
    [missed] = httpx.get(f"{replay_server.base_url}/responses?limit=1").json()["data"]
    root = replay_server.base_url.removesuffix("/v1")

    browser.goto(f"{root}/ui/responses/{hit.id}")
    assert "replayed:" in browser.text(".step.upstream_call")
    browser.goto(f"{root}/ui/responses/{missed['id']}")
    assert "recording_not_found" in browser.text(".upstream-error")
    browser.call("click", selector="a[href$='/calls/1/recording']")
    assert "Replay miss: closest recording" in browser.text("h1")
    assert browser.count("tr.differs") == 1
    row = browser.text("tr.differs")
    assert row.startswith("messages[0].content") and "letter J" in row and "letter S" in row
