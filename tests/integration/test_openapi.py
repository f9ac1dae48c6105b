"""The served OpenAPI document describes every body and reply, and a schema fuzzer driven by it
(schemathesis, bounded) finds no 5xx."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from riposte.config import ProviderConfig, Settings
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply

# POSTs that take no body in the OpenAI API either.
BODYLESS_POSTS = {"/v1/vector_stores/{store_id}/file_batches/{batch_id}/cancel", "/v1/responses/{response_id}/cancel"}
EXAMPLES_PER_OPERATION = 6


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    with ScriptedUpstream() as upstream:
        # Whatever the fuzzer asks, the model answers; only the server's own faults are 5xx.
        upstream.enqueue(*[text_reply("fine") for _ in range(5000)])
        # Stores embed through the scripted upstream: the local model's cold load is not under test.
        settings_ = Settings(data_dir=tmp / "data", database_url=f"sqlite+aiosqlite:///{tmp / 'riposte.db'}",
                             providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")],
                             default_embedding_model="fake/embedder")
        with RunningServer(settings_) as server:
            yield server


@pytest.fixture(scope="module")
def spec(fuzzed_server: RunningServer) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{fuzzed_server.base_url}/../openapi.json", timeout=30).json()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for path, methods in spec["paths"].items()
            for method, operation in methods.items()]


def test_every_post_documents_its_body_and_every_operation_its_reply(spec: dict[str, Any]) -> None:
    assert len(operations(spec)) >= 39
    for method, path, operation in operations(spec):
        if method == "post" and path not in BODYLESS_POSTS:
            assert operation.get("requestBody", {}).get("content"), f"{method} {path} documents no body"
        reply = operation["responses"].get("200", {})
        assert reply.get("content"), f"{method} {path} documents no reply"


def test_the_create_response_body_is_the_validating_model(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/v1/responses"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = body["$ref"].rsplit("/", 1)[-1]
    schema = spec["components"]["schemas"][name]
    assert {"model", "input", "tools", "previous_response_id", "conversation", "stream"} <= set(schema["properties"])
    assert schema.get("additionalProperties") is False
    reply = spec["paths"]["/v1/responses"]["post"]["responses"]["200"]["content"]
    assert set(reply) == {"application/json", "text/event-stream"}


@pytest.mark.timeout(600)
def test_fuzzed_requests_never_get_a_5xx(fuzzed_server: RunningServer, tmp_path: Path) -> None:
    """schemathesis's own runner (its pytest plugin does not load on this pytest), bounded to a few
    deterministic examples per operation, positive and negative, with only the no-5xx check."""
    root = fuzzed_server.base_url.removesuffix("/v1")
    report = tmp_path / "report.json"
    run = subprocess.run(
        [str(Path(sys.executable).with_name("st")), "run", f"{root}/openapi.json", "--url", root,
         "--checks", "not_a_server_error", "--phases", "examples,fuzzing",
         "--max-examples", str(EXAMPLES_PER_OPERATION), "--generation-deterministic", "--workers", "1",
         "--request-timeout", "30", "--suppress-health-check", "all", "--no-color",
         "--report", "ndjson", "--report-ndjson-path", str(report)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
    )
    (Path(os.environ.get("RIPOSTE_SCHEMATHESIS_LOG", tmp_path / "st.log"))).write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert counts is not None and int(counts[1]) == int(counts[2]) >= 100, run.stdout[-3000:]
