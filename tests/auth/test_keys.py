"""API key lifecycle: create with the CLI, use with the SDK, revoke (the next request is 401),
and only hashes in the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import openai
import orjson
import pytest
from sqlalchemy import select

from riposte import cli
from riposte.store import schema
from riposte.store.database import create_engine
from riposte.testing.server import RunningServer
from tests.auth.conftest import Deployment
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply


def client(server: RunningServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=30)


def test_a_created_key_works_with_the_sdk_and_a_revoked_one_gets_401(
    deployment: Deployment, start_server: Callable[..., RunningServer], upstream: ScriptedUpstream
) -> None:
    key = deployment.create_key("team-a", "--name", "ci")
    assert key.startswith("rsk_")
    server = start_server()
    upstream.enqueue(text_reply("Saturn."))
    answer = client(server, key).responses.create(model="fake/m", input="A planet with rings?")
    assert answer.output_text == "Saturn."
    assert client(server, key).responses.retrieve(answer.id).id == answer.id

    code, out, _ = deployment.keys("list")
    listed = [orjson.loads(line) for line in out.splitlines()]
    assert code == 0 and len(listed) == 1
    assert listed[0]["project"] == "team-a" and listed[0]["name"] == "ci" and not listed[0]["revoked"]
    assert key not in out and "hash" not in listed[0]

    assert deployment.keys("revoke", listed[0]["key_id"])[0] == 0
    with pytest.raises(openai.AuthenticationError) as raised:
        client(server, key).responses.retrieve(answer.id)
    assert raised.value.status_code == 401
    assert raised.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    assert deployment.keys("revoke", key)[0] == 1  # already revoked


def test_missing_wrong_and_malformed_keys_are_401_in_the_envelope(
    deployment: Deployment, start_server: Callable[..., RunningServer]
) -> None:
    key = deployment.create_key("team-a")
    server = start_server()
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for presented in ("x", tampered, "rsk_000000000000_nope", key.replace("rsk_", "sk-")):
        with pytest.raises(openai.AuthenticationError) as raised:
            client(server, presented).models.list()
        error = raised.value.body
        assert isinstance(error, dict) and error["type"] == "invalid_request_error"
    import httpx

    reply = httpx.get(f"{server.base_url}/models")
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "missing_api_key"
    assert httpx.get(server.base_url.removesuffix("/v1") + "/health").status_code == 200
    assert client(server, key).models.list() is not None


def test_the_database_holds_only_hashes(deployment: Deployment, start_server: Callable[..., RunningServer]) -> None:
    key = deployment.create_key("team-a", "--admin")
    secret = key.split("_", 2)[2]

    async def rows() -> list[tuple[object, ...]]:
        engine = create_engine(deployment.database_url)
        try:
            async with engine.connect() as connection:
                return [tuple(row) for row in (await connection.execute(select(schema.api_keys))).all()]
        finally:
            await engine.dispose()

    stored = asyncio.run(rows())
    assert len(stored) == 1
    assert not any(secret in str(value) for value in stored[0])
    if deployment.database_url.startswith("sqlite"):
        for path in deployment.data_dir.glob("riposte.db*"):
            assert secret.encode() not in path.read_bytes()
            assert path.stat().st_mode & 0o777 == 0o600
        assert deployment.data_dir.stat().st_mode & 0o777 == 0o700


def test_a_key_created_while_the_server_runs_switches_authentication_on(
    deployment: Deployment, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server()
    assert client(server, "anything").models.list() is not None  # no key yet: loopback, open
    key = deployment.create_key("team-a")
    deadline = time.monotonic() + 5
    while True:
        try:
            client(server, "anything").models.list()
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "authentication never switched on"
        time.sleep(0.2)
    assert client(server, key).models.list() is not None


def test_a_non_loopback_bind_without_keys_is_refused_unless_insecure(deployment: Deployment) -> None:
    flags = ["--data-dir", str(deployment.data_dir), "--database-url", deployment.database_url]
    assert cli.main(["serve", "--host", "0.0.0.0", *flags]) == 2


def test_no_keys_on_loopback_warns_loudly(
    start_server: Callable[..., RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="riposte.auth"):
        start_server()
    assert "no API keys are configured" in caplog.text
    assert "loopback only" in caplog.text
