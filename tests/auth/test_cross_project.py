"""The cross-project matrix: every object type x every operation, including indirect uses, from a
second project. Every answer is a 404 in the envelope (400 `previous_response_not_found` for a
response to continue), indistinguishable from an id that never existed; lists show only the
caller's objects; nothing changes; an admin key sees everything."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from riposte.config import InferenceMode
from riposte.testing.server import RunningServer
from tests.auth.conftest import Deployment
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply

SECRET = "alpha-secret-rings-of-saturn"
EMBEDDING = {"embedding_model": "fake/emb", "embedding_dimension": 8}


class Caller:
    def __init__(self, server: RunningServer, key: str) -> None:
        self.http = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        if body is None and method == "POST":  # as the SDK sends a body-less POST
            return self.http.request(method, path, headers={"Content-Type": "application/json"})
        return self.http.request(method, path, json=body)

    def ok(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = self.call(method, path, body)
        assert reply.status_code == 200, reply.text
        data: dict[str, Any] = reply.json()
        return data

    def upload(self, name: str, text: str) -> str:
        reply = self.http.post("/files", files={"file": (name, text.encode())}, data={"purpose": "assistants"})
        assert reply.status_code == 200, reply.text
        file_id: str = reply.json()["id"]
        return file_id

    def wait_ingested(self, store_id: str, file_id: str) -> None:
        deadline = time.monotonic() + 60
        while self.ok("GET", f"/vector_stores/{store_id}/files/{file_id}")["status"] == "in_progress":
            assert time.monotonic() < deadline
            time.sleep(0.05)


@dataclass(frozen=True)
class Objects:
    resp: str
    unstored: str
    conv: str
    item: str
    file: str
    store: str
    batch: str
    beta_store: str = ""
    beta_file: str = ""

    def ids(self) -> dict[str, str]:
        return dict(self.__dict__)


def ghost(value: str) -> str:
    """An id of the same shape that never existed."""
    prefix = value.rsplit("_", 1)[0] + "_" if "_" in value else value.split("-", 1)[0] + "-"
    return prefix + secrets.token_hex(len(value) - len(prefix))[: len(value) - len(prefix)]


def create_alpha_objects(alpha: Caller, upstream: ScriptedUpstream) -> Objects:
    upstream.enqueue(text_reply(f"The secret is {SECRET}."), text_reply("not stored"))
    resp = alpha.ok("POST", "/responses", {"model": "fake/m", "input": f"Remember {SECRET}"})["id"]
    unstored = alpha.ok("POST", "/responses", {"model": "fake/m", "input": "x", "store": False})["id"]
    conv = alpha.ok("POST", "/conversations", {"items": [{"role": "user", "content": SECRET}],
                                               "metadata": {"owner": "alpha"}})["id"]
    item = alpha.ok("GET", f"/conversations/{conv}/items")["data"][0]["id"]
    file = alpha.upload("alpha.txt", f"Saturn's rings hide the {SECRET}.")
    second = alpha.upload("alpha2.txt", f"More about {SECRET}.")
    store = alpha.ok("POST", "/vector_stores", {"name": "alpha-store", "file_ids": [file], **EMBEDDING})["id"]
    alpha.wait_ingested(store, file)
    batch = alpha.ok("POST", f"/vector_stores/{store}/file_batches", {"file_ids": [second]})["id"]
    alpha.wait_ingested(store, second)
    return Objects(resp=resp, unstored=unstored, conv=conv, item=item, file=file, store=store, batch=batch)


# (method, path, body): every operation on every object type, with the other project's ids.
OPERATIONS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/responses/{resp}", None),
    ("DELETE", "/responses/{resp}", None),
    ("GET", "/responses/{resp}/input_items", None),
    ("POST", "/responses", {"model": "fake/m", "input": "continue", "previous_response_id": "{resp}"}),
    ("POST", "/responses", {"model": "fake/m", "input": "continue", "previous_response_id": "{unstored}"}),
    ("POST", "/responses", {"model": "fake/m", "input": "continue", "previous_response_id": "{resp}",
                            "stream": True}),
    ("GET", "/conversations/{conv}", None),
    ("POST", "/conversations/{conv}", {"metadata": {"owner": "beta"}}),
    ("DELETE", "/conversations/{conv}", None),
    ("POST", "/conversations/{conv}/items", {"items": [{"role": "user", "content": "injected"}]}),
    ("GET", "/conversations/{conv}/items", None),
    ("GET", "/conversations/{conv}/items/{item}", None),
    ("DELETE", "/conversations/{conv}/items/{item}", None),
    ("POST", "/responses", {"model": "fake/m", "input": "what did I say?", "conversation": "{conv}"}),
    ("POST", "/responses", {"model": "fake/m", "input": "hi", "conversation": {"id": "{conv}"}, "stream": True}),
    ("GET", "/files/{file}", None),
    ("GET", "/files/{file}/content", None),
    ("DELETE", "/files/{file}", None),
    ("POST", "/vector_stores", {"name": "steal", "file_ids": ["{file}"], **EMBEDDING}),
    ("POST", "/vector_stores/{beta_store}/files", {"file_id": "{file}"}),
    ("POST", "/vector_stores/{beta_store}/file_batches", {"file_ids": ["{file}"]}),
    ("GET", "/vector_stores/{store}", None),
    ("POST", "/vector_stores/{store}", {"name": "stolen"}),
    ("DELETE", "/vector_stores/{store}", None),
    ("POST", "/vector_stores/{store}/search", {"query": "secret"}),
    ("GET", "/vector_stores/{store}/files", None),
    ("POST", "/vector_stores/{store}/files", {"file_id": "{beta_file}"}),
    ("GET", "/vector_stores/{store}/files/{file}", None),
    ("POST", "/vector_stores/{store}/files/{file}", {"attributes": {"owner": "beta"}}),
    ("DELETE", "/vector_stores/{store}/files/{file}", None),
    ("GET", "/vector_stores/{store}/files/{file}/content", None),
    ("POST", "/vector_stores/{store}/file_batches", {"file_ids": ["{beta_file}"]}),
    ("GET", "/vector_stores/{store}/file_batches/{batch}", None),
    ("POST", "/vector_stores/{store}/file_batches/{batch}/cancel", None),
    ("GET", "/vector_stores/{store}/file_batches/{batch}/files", None),
]


def fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {key: fill(value, ids) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, ids) for value in template]
    return template


def refusal_status(body: dict[str, Any] | None) -> int:
    """404, but 400 `previous_response_not_found` for a response to continue (as for an unknown id)."""
    return 400 if body is not None and "previous_response_id" in body else 404


def normalized(reply: httpx.Response, ids: dict[str, str]) -> str:
    text = reply.text
    for name, value in ids.items():
        if value:
            text = text.replace(value, f"<{name}>")
    return text


def test_another_projects_objects_are_refused_as_missing_everywhere(
    deployment: Deployment, start_server: Callable[..., RunningServer], upstream: ScriptedUpstream
) -> None:
    keys = {name: deployment.create_key(project, *flags)
            for name, project, flags in (("alpha", "alpha", ()), ("beta", "beta", ()), ("admin", "ops", ("--admin",)))}
    server = start_server()
    alpha, beta, admin = (Caller(server, keys[name]) for name in ("alpha", "beta", "admin"))
    objects = create_alpha_objects(alpha, upstream)
    beta_file = beta.upload("beta.txt", "beta's own notes")
    beta_store = beta.ok("POST", "/vector_stores", {"name": "beta-store", **EMBEDDING})["id"]
    real = {**objects.ids(), "beta_store": beta_store, "beta_file": beta_file}
    ghosts = {name: (ghost(value) if not name.startswith("beta") else value) for name, value in real.items()}
    sent_upstream = len(upstream.requests)

    leaks = []
    for method, path, body in OPERATIONS:
        reply = beta.call(method, fill(path, real), fill(body, real))
        never_existed = beta.call(method, fill(path, ghosts), fill(body, ghosts))
        label = f"{method} {path} {body or ''}"
        if reply.status_code != refusal_status(body) or reply.json()["error"]["type"] != "invalid_request_error":
            leaks.append(f"{label}: {reply.status_code} {reply.text[:200]}")
        elif normalized(reply, real) != normalized(never_existed, ghosts):
            leaks.append(f"{label}: differs from a missing id: {reply.text} vs {never_existed.text}")
        elif SECRET in reply.text:
            leaks.append(f"{label}: shows the secret")
    assert leaks == []
    assert len(upstream.requests) == sent_upstream, "no refused request may reach the model"

    assert_lists_show_only_the_callers_objects(beta, real)
    assert_nothing_changed(alpha, objects)
    assert_admin_sees_everything(admin, objects)


def assert_lists_show_only_the_callers_objects(beta: Caller, real: dict[str, str]) -> None:
    listed = " ".join(beta.call("GET", path).text for path in ("/responses", "/files", "/vector_stores"))
    for name in ("resp", "unstored", "conv", "file", "store", "batch"):
        assert real[name] not in listed, name
    assert real["beta_file"] in listed and real["beta_store"] in listed
    assert SECRET not in listed


def assert_nothing_changed(alpha: Caller, objects: Objects) -> None:
    assert SECRET in alpha.ok("GET", f"/responses/{objects.resp}")["output"][0]["content"][0]["text"]
    assert len(alpha.ok("GET", f"/responses/{objects.resp}/input_items")["data"]) == 1
    assert alpha.ok("GET", f"/conversations/{objects.conv}")["metadata"] == {"owner": "alpha"}
    assert [i["id"] for i in alpha.ok("GET", f"/conversations/{objects.conv}/items")["data"]] == [objects.item]
    assert alpha.call("GET", f"/files/{objects.file}/content").text == f"Saturn's rings hide the {SECRET}."
    store = alpha.ok("GET", f"/vector_stores/{objects.store}")
    assert store["name"] == "alpha-store" and store["file_counts"]["completed"] == 2
    attached = alpha.ok("GET", f"/vector_stores/{objects.store}/files/{objects.file}")
    assert attached["attributes"] == {}
    assert alpha.ok("GET", f"/vector_stores/{objects.store}/file_batches/{objects.batch}")["status"] == "completed"
    hits = alpha.ok("POST", f"/vector_stores/{objects.store}/search", {"query": "secret"})["data"]
    assert hits, "the store's chunks are all still searchable"


def assert_admin_sees_everything(admin: Caller, objects: Objects) -> None:
    for path in (f"/responses/{objects.resp}", f"/conversations/{objects.conv}", f"/files/{objects.file}",
                 f"/vector_stores/{objects.store}", f"/vector_stores/{objects.store}/file_batches/{objects.batch}"):
        admin.ok("GET", path)
    listed = " ".join(admin.call("GET", path).text for path in ("/responses", "/files", "/vector_stores"))
    assert objects.resp in listed and objects.file in listed and objects.store in listed


def test_file_search_and_input_files_over_another_projects_objects_find_nothing(
    deployment: Deployment, start_server: Callable[..., RunningServer], upstream: ScriptedUpstream
) -> None:
    """Indirect uses inside a turn: a file_search tool naming another project's vector store, an
    item_reference to another project's item, and an input_file naming another project's file,
    are answered as for ids that do not exist (the same 404 in the error envelope), before the
    model is called."""
    alpha_key, beta_key = deployment.create_key("alpha"), deployment.create_key("beta")
    server = start_server()
    alpha, beta = Caller(server, alpha_key), Caller(server, beta_key)
    objects = create_alpha_objects(alpha, upstream)
    sent_upstream = len(upstream.requests)
    answers = []
    for store_id in (objects.store, ghost(objects.store)):
        reply = beta.call("POST", "/responses", {"model": "fake/m", "input": "search",
                                                 "tools": [{"type": "file_search", "vector_store_ids": [store_id]}]})
        answers.append((reply.status_code, reply.text.replace(store_id, "<id>")))
    assert answers[0] == answers[1] and answers[0][0] == 404, answers
    assert '"param":"tools[0].vector_store_ids[0]"' in answers[0][1].replace(" ", "")
    assert SECRET not in answers[0][1]
    assert len(upstream.requests) == sent_upstream, "a refused search never reaches the model"

    output_item = alpha.ok("GET", f"/responses/{objects.resp}")["output"][0]["id"]
    for item_id in (output_item, objects.item):  # a response's output item, a conversation's item
        answers = []
        for candidate in (item_id, ghost(item_id)):
            reference = {"type": "item_reference", "id": candidate}
            reply = beta.call("POST", "/responses", {"model": "fake/m", "input": [reference]})
            answers.append((reply.status_code, reply.text.replace(candidate, "<id>")))
        assert answers[0] == answers[1] and answers[0][0] >= 400, answers
        assert SECRET not in answers[0][1]

    answers = []
    for file_id in (objects.file, ghost(objects.file)):
        part = {"type": "input_file", "file_id": file_id}
        reply = beta.call("POST", "/responses", {"model": "fake/m", "input": [{"role": "user", "content": [part]}]})
        answers.append((reply.status_code, reply.text.replace(file_id, "<id>")))
    assert answers[0] == answers[1] and answers[0][0] >= 400
    assert SECRET not in answers[0][1]


@pytest.mark.parametrize("mode", [InferenceMode.RECORD_IF_MISSING])
def test_recordings_belong_to_the_project_that_made_them(
    deployment: Deployment, start_server: Callable[..., RunningServer], upstream: ScriptedUpstream,
    mode: InferenceMode,
) -> None:
    recordings = deployment.data_dir.parent / "recordings"
    alpha_key, beta_key = deployment.create_key("alpha"), deployment.create_key("beta")
    server = start_server(inference_mode=mode, recordings_dir=recordings)
    alpha, beta = Caller(server, alpha_key), Caller(server, beta_key)
    upstream.enqueue(text_reply(SECRET), text_reply("beta's own answer"))
    question = {"model": "fake/m", "input": "What is the secret?"}
    assert SECRET in str(alpha.ok("POST", "/responses", question)["output"])
    answer = beta.ok("POST", "/responses", question)
    assert SECRET not in str(answer["output"]) and len(upstream.requests) == 2
    assert SECRET in str(alpha.ok("POST", "/responses", question)["output"])  # replayed, not asked again
    assert len(upstream.requests) == 2
    assert len(list(recordings.glob("*.json"))) == 2
