"""The stored turns the inspector's browser tests look at (and its README screenshot shows): a
server with authentication on (keys of two projects), the scripted upstream, the real local
embedding model, a file_search turn with a citation, a failed turn, a conversation (its turn checked by a guardrail)."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai

from riposte import cli
from riposte.config import ProviderConfig, Settings
from riposte.guardrails.settings import GuardConfig, GuardrailSettings
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, error_reply, make_usage, text_reply, tool_calls_reply

SATURN = "Saturn has the most spectacular rings of all planets. They are made of ice and rock."
JUPITER = "Jupiter is the largest planet. Its Great Red Spot is a storm larger than Earth."


@dataclass
class Scenario:
    server: RunningServer
    upstream: ScriptedUpstream
    key: str  # project "alpha"
    other_key: str  # project "beta"
    store_id: str
    saturn_file: str
    search_turn: str
    failed_turn: str
    conversation: str
    conversation_turn: str

    @property
    def root(self) -> str:
        return self.server.base_url.removesuffix("/v1")

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.server.base_url, api_key=key or self.key, max_retries=0, timeout=120)


def create_key(data_dir: Path, database_url: str, project: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["keys", "create", "--project", project, "--data-dir", str(data_dir),
                         "--database-url", database_url])
    assert code == 0, err.getvalue()
    return out.getvalue().strip()


def _wait_for_file(sdk: openai.OpenAI, store_id: str, file_id: str) -> str:
    deadline = time.monotonic() + 180
    status = "in_progress"
    while status == "in_progress" and time.monotonic() < deadline:
        status = sdk.vector_stores.files.retrieve(vector_store_id=store_id, file_id=file_id).status
        time.sleep(0.1)
    return status


@contextmanager
def running_scenario(data_dir: Path) -> Iterator[Scenario]:
    database_url = f"sqlite+aiosqlite:///{data_dir / 'riposte.db'}"
    data_dir.mkdir(parents=True, exist_ok=True)
    key = create_key(data_dir, database_url, "alpha")
    other_key = create_key(data_dir, database_url, "beta")
    with ScriptedUpstream() as upstream:
        server = RunningServer(Settings(
            data_dir=data_dir, database_url=database_url,
            providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")],
            inspector={"prices": {"fake/planets": {"input": 2.5, "output": 10.0}}},
            guardrails=GuardrailSettings(guards=[GuardConfig(name="omni", type="moderations",
                                                             model="fake/omni-moderation-latest")]))).start()
        try:
            yield _populated(server, upstream, key, other_key)
        finally:
            server.stop()


def _populated(server: RunningServer, upstream: ScriptedUpstream, key: str, other_key: str) -> Scenario:
    sdk = openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=180)
    store = sdk.vector_stores.create(name="planets")
    file_ids = []
    for name, text in (("saturn.txt", SATURN), ("jupiter.txt", JUPITER)):
        file_id = sdk.files.create(file=(name, text.encode()), purpose="assistants").id
        sdk.vector_stores.files.create(vector_store_id=store.id, file_id=file_id)
        assert _wait_for_file(sdk, store.id, file_id) == "completed"
        file_ids.append(file_id)
    saturn = file_ids[0]
    broken = sdk.files.create(file=("broken.pdf", b"%PDF-1.7\nnot really a pdf"), purpose="assistants").id
    sdk.vector_stores.files.create(vector_store_id=store.id, file_id=broken)
    assert _wait_for_file(sdk, store.id, broken) == "failed"

    upstream.enqueue(
        tool_calls_reply([("call_rings", "knowledge_search", '{"query": "planet rings"}')], usage=make_usage(120, 12)),
        text_reply(f"Saturn has the most spectacular rings <|{saturn}|>.", usage=make_usage(260, 14), pieces=6),
    )
    search_turn = sdk.responses.create(model="fake/planets", input="Which planet has rings?",
                                       instructions="Answer from the documents and cite them.",
                                       tools=[{"type": "file_search", "vector_store_ids": [store.id]}],
                                       include=["file_search_call.results"])

    upstream.enqueue(error_reply(500, "the model server is on fire", code="server_on_fire"))
    with contextlib.suppress(openai.APIStatusError):
        sdk.responses.create(model="fake/planets", input="Say something")
    listed = httpx.get(f"{server.base_url}/responses?limit=5", headers={"Authorization": f"Bearer {key}"}).json()
    failed = [r for r in listed["data"] if r["status"] == "failed"]
    assert failed, "the failed turn is stored"

    conversation = sdk.conversations.create(items=[{"type": "message", "role": "user", "content": "Hello, planets."}])
    upstream.enqueue(text_reply("Hello! Ask me about Saturn or Jupiter.", usage=make_usage(20, 9)))
    conversation_turn = sdk.responses.create(model="fake/planets", input="What can you tell me?",
                                             conversation=conversation.id, extra_body={"guardrails": ["omni"]})
    return Scenario(server=server, upstream=upstream, key=key, other_key=other_key, store_id=store.id,
                    saturn_file=saturn, search_turn=search_turn.id, failed_turn=failed[0]["id"],
                    conversation=conversation.id, conversation_turn=conversation_turn.id)
