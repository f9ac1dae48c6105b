"""Start-up recovery: work a dead server process left `in_progress` is failed (turns) or resumed
(file ingestion); work of live processes on the same database is left alone."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import openai
import orjson

from riposte.config import ProviderConfig
from riposte.store.instances import host_identity
from riposte.testing.server import RunningServer
from tests.conftest import ServerFactory
from tests.fakes.scripted_upstream import ScriptedUpstream, slow_reply, text_reply
from tests.integration.sdk import sdk
from tests.integration.stored_rows import response_row, sql
from tests.vectors.helpers import upload, wait_for_file


def _dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert finished.returncode == 0
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _register(database_url: str, instance_id: str, host: str, pid: int, heartbeat_at: float) -> None:
    sql(database_url, "INSERT INTO server_instances (id, host, pid, process_start, started_at, heartbeat_at) "
                      "VALUES (:id, :host, :pid, 1, :at, :at)", id=instance_id, host=host, pid=pid, at=heartbeat_at)


def _leave_in_progress(database_url: str, response_id: str, owner: str) -> None:
    """Put a stored response back as a crashed turn leaves it: the row written at its start."""
    response = orjson.loads(response_row(database_url, response_id).response)
    response.update(status="in_progress", output=[])
    sql(database_url, "UPDATE responses SET status = 'in_progress', owner = :owner, response = :response "
                      "WHERE id = :id", owner=owner, response=orjson.dumps(response).decode(), id=response_id)


def _ingested_file(client: openai.OpenAI) -> tuple[str, str]:
    store = client.vector_stores.create(name="docs", extra_body={"embedding_model": "fake/emb",
                                                                 "embedding_dimension": 8})
    file_id = upload(client, "rings.txt", "Saturn has rings.")
    client.vector_stores.files.create(vector_store_id=store.id, file_id=file_id)
    assert wait_for_file(client, store.id, file_id).status == "completed"
    return store.id, file_id


def _servers(make_server: ServerFactory, upstream: ScriptedUpstream) -> RunningServer:
    return make_server(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")])


def test_start_up_fails_the_turns_and_resumes_the_ingestions_of_a_dead_process(
    make_server: ServerFactory, upstream: ScriptedUpstream, database_url: str
) -> None:
    first = _servers(make_server, upstream)
    client = sdk(first)
    upstream.enqueue(text_reply("an answer"))
    response_id = client.responses.create(model="fake/m", input="hi").id
    store_id, file_id = _ingested_file(client)
    first.stop()

    dead = "inst_dead_same_host"
    _register(database_url, dead, host_identity(), _dead_pid(), time.time())
    _leave_in_progress(database_url, response_id, dead)
    sql(database_url, "UPDATE vector_store_files SET status = 'in_progress', owner = :owner, usage_bytes = 0 "
                      "WHERE file_id = :file", owner=dead, file=file_id)

    second = _servers(make_server, upstream)
    client = sdk(second)
    recovered = client.responses.retrieve(response_id)
    assert recovered.status == "failed"
    assert recovered.error is not None and recovered.error.code == "server_error"
    assert recovered.error.message.startswith("server restarted")
    assert client.responses.input_items.list(response_id).data[0].content[0].text == "hi"  # type: ignore[union-attr]
    resumed = wait_for_file(client, store_id, file_id)
    assert resumed.status == "completed" and resumed.usage_bytes > 0
    assert sql(database_url, "SELECT id FROM server_instances WHERE id = :id", id=dead) == []


def test_a_file_whose_ingestion_was_interrupted_too_often_fails_with_last_error(
    make_server: ServerFactory, upstream: ScriptedUpstream, database_url: str
) -> None:
    first = _servers(make_server, upstream)
    client = sdk(first)
    store_id, file_id = _ingested_file(client)
    first.stop()
    dead = "inst_dead_again"
    _register(database_url, dead, host_identity(), _dead_pid(), time.time())
    sql(database_url, "UPDATE vector_store_files SET status = 'in_progress', owner = :owner, attempts = 2 "
                      "WHERE file_id = :file", owner=dead, file=file_id)

    client = sdk(_servers(make_server, upstream))
    failed = client.vector_stores.files.retrieve(vector_store_id=store_id, file_id=file_id)
    assert failed.status == "failed"
    assert failed.last_error is not None and "server restarted" in failed.last_error.message


def test_work_of_live_processes_is_left_alone_and_other_hosts_go_by_their_heartbeat(
    make_server: ServerFactory, upstream: ScriptedUpstream, database_url: str
) -> None:
    busy = _servers(make_server, upstream)
    upstream.enqueue(text_reply("one"), text_reply("two"))
    quiet_id = sdk(busy).responses.create(model="fake/m", input="a").id
    stale_id = sdk(busy).responses.create(model="fake/m", input="b").id
    _register(database_url, "inst_other_host_alive", "another-host", 1, time.time())
    _register(database_url, "inst_other_host_silent", "another-host", 2, time.time() - 3600)
    _leave_in_progress(database_url, quiet_id, "inst_other_host_alive")
    _leave_in_progress(database_url, stale_id, "inst_other_host_silent")

    upstream.enqueue(slow_reply("one two three four five six", delay_s=0.2, pieces=6))
    with httpx.Client(timeout=30) as http, http.stream(
        "POST", f"{busy.base_url}/responses", json={"model": "fake/m", "input": "slow", "stream": True}
    ) as streaming:
        lines = streaming.iter_lines()
        created = orjson.loads(next(line for line in lines if line.startswith("data: "))[6:])
        _servers(make_server, upstream)  # a neighbour starts on the same database, in the same process
        assert response_row(database_url, created["response"]["id"]).status == "in_progress"
        assert response_row(database_url, quiet_id).status == "in_progress"
        assert response_row(database_url, stale_id).status == "failed"
        for _ in lines:
            pass
    assert sdk(busy).responses.retrieve(created["response"]["id"]).status == "completed"
    sql(database_url, "DELETE FROM server_instances WHERE id = 'inst_other_host_alive'")
