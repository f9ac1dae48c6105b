"""The inspector's recordings view over the shipped seed recordings (replay mode): the recording a
turn replayed, and for a replay miss the closest recording with the differing fields marked."""

from __future__ import annotations

import re

import httpx
import openai
import pytest

from riposte.testing.server import RunningServer
from tests.conftest import SEED_RECORDINGS
from tests.integration.test_replay_seeds import QUESTION, client

SEED_001 = next(SEED_RECORDINGS.glob("001_*.json")).name


def _page(server: RunningServer, path: str) -> httpx.Response:
    return httpx.get(server.base_url.removesuffix("/v1") + path)


def test_a_replayed_turn_links_its_recording(seed_server: RunningServer) -> None:
    response = client(seed_server).responses.create(model="openai/gpt-4o", input=QUESTION)
    timeline = _page(seed_server, f"/ui/responses/{response.id}")
    assert timeline.status_code == 200
    assert f"replayed: <a class=\"mono\" href=\"/ui/responses/{response.id}/calls/1/recording\">{SEED_001}</a>" \
        in timeline.text
    recording = _page(seed_server, f"/ui/responses/{response.id}/calls/1/recording")
    assert recording.status_code == 200 and f"Recording <span class=\"mono\">{SEED_001}" in recording.text
    assert 'class="differs"' not in recording.text


def test_a_replay_miss_shows_the_closest_recording_with_the_differences_marked(seed_server: RunningServer) -> None:
    changed = QUESTION.replace("letter S", "letter T")
    with pytest.raises(openai.InternalServerError):
        client(seed_server).responses.create(model="openai/gpt-4o", input=changed)
    listed = httpx.get(f"{seed_server.base_url}/responses?limit=1").json()["data"]
    [failed] = [r for r in listed if r["status"] == "failed"]
    timeline = _page(seed_server, f"/ui/responses/{failed['id']}")
    assert f"compare with the closest recording, {SEED_001}" in timeline.text

    page = _page(seed_server, f"/ui/responses/{failed['id']}/calls/1/recording")
    assert page.status_code == 200 and "Replay miss: closest recording" in page.text
    differing = re.findall(r'<tr class="differs"><td class="mono">([^< ]+)', page.text)
    assert differing == ["messages[0].content"], differing
    assert "letter T" in page.text and "letter S" in page.text

    assert _page(seed_server, f"/ui/responses/{failed['id']}/calls/9/recording").status_code == 404
