"""Codex CLI, unmodified, against Riposte over the scripted upstream.

`codex exec` (the npm version pinned in tests/clients/codex/package-lock.json) talks to a Riposte
server on loopback through a custom model provider with `wire_api = "responses"`; no credentials,
no network. The scripted model calls Codex's own tools, Codex runs them, and the model answers.
The assertions read what reached the upstream: the tool results Codex sent back.

Codex sends different requests for its default model (tools inside an `additional_tools` item,
grouped in namespaces, the shell reached through a freeform `exec` tool that runs JavaScript) and
for a model id it does not know (plain function tools, `exec_command` for the shell), so every
round trip runs with both.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from riposte import cli
from riposte.config import ProviderConfig, Settings
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.clients.npm import npm_installed
from tests.conftest import REPO
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply

CODEX_PACKAGE = REPO / "tests" / "clients" / "codex"
CUSTOM_MODEL = "fake/coder-1"  # a model id Codex has no metadata for
DEFAULT_MODEL = None  # Codex picks its own default model id
PATCH = "*** Begin Patch\n*** Update File: hello.txt\n@@\n-hello\n+hello, patched\n*** End Patch\n"


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    """The pinned Codex CLI, installed by `npm ci` from the committed lockfile (cached per lockfile)."""
    return npm_installed(CODEX_PACKAGE) / ".bin" / "codex"


EVENT: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)


@dataclass
class StreamTee:
    """A loopback pass-through between Codex and Riposte that keeps each SSE body Codex read,
    so the test can hold every stream Codex consumed to the grammar and the SDK's event types."""

    target: str
    bodies: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        tee = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "accept-encoding", "connection")}
                with httpx.stream("POST", tee.target + self.path, content=body, headers=headers,
                                  timeout=60) as reply:
                    self.send_response(reply.status_code)
                    self.send_header("content-type", reply.headers.get("content-type", "application/json"))
                    self.send_header("connection", "close")
                    self.end_headers()
                    received = bytearray()
                    for chunk in reply.iter_raw():
                        received += chunk
                        self.wfile.write(chunk)
                        self.wfile.flush()
                tee.bodies.append(bytes(received))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def streams(self) -> list[list[dict[str, Any]]]:
        return [[orjson.loads(line[6:]) for line in body.decode().splitlines()
                 if line.startswith("data: ") and line != "data: [DONE]"] for body in self.bodies]


@dataclass
class CodexRig:
    server: RunningServer
    upstream: ScriptedUpstream
    tee: StreamTee
    binary: Path
    root: Path

    def run(self, tmp_path: Path, model: str | None, prompt: str,
            key: str | None = None) -> subprocess.CompletedProcess[str]:
        """`key`: Riposte has authentication on; the provider reads the key from RIPOSTE_API_KEY."""
        home = tmp_path / "codex-home"
        home.mkdir()
        (home / "config.toml").write_text(codex_config(self.tee.base_url, with_key=key is not None))
        args = [str(self.binary), "exec", "--color", "never",
                # Codex's sandbox is its own business, and CI runners may forbid the user
                # namespaces it needs; the round trip through Riposte is what this test is about.
                "--sandbox", "danger-full-access"]
        if model is not None:
            args += ["--model", model]
        env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "CODEX_"))}
        env.update(CODEX_HOME=str(home), HOME=str(tmp_path))
        if key is not None:
            env["RIPOSTE_API_KEY"] = key
        return subprocess.run([*args, prompt], cwd=scratch_repo(tmp_path), env=env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)


def codex_config(base_url: str, with_key: bool = False) -> str:
    """A Codex user's config.toml for Riposte: a custom provider speaking the Responses API (and,
    with authentication on, sending the key in RIPOSTE_API_KEY), as the README shows it."""
    key = 'env_key = "RIPOSTE_API_KEY"\n' if with_key else ""
    return f'''model_provider = "riposte"

[model_providers.riposte]
name = "Riposte"
base_url = "{base_url}"
wire_api = "responses"
{key}'''


def scratch_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hello.txt").write_text("hello\n")
    for command in (["init", "-q"], ["add", "hello.txt"],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    return repo


@pytest.fixture(scope="module")
def rig(codex_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodexRig]:
    """One server for the module: Codex sends store=false, so nothing is shared between runs."""
    root = tmp_path_factory.mktemp("codex")
    with ScriptedUpstream() as upstream:
        settings = Settings(data_dir=root / "data", database_url=f"sqlite+aiosqlite:///{root / 'riposte.db'}",
                            providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")])
        with RunningServer(settings) as server:
            tee = StreamTee(server.base_url.removesuffix("/v1"))
            try:
                yield CodexRig(server, upstream, tee, codex_bin, root)
            finally:
                tee.close()


@pytest.fixture
def codex(rig: CodexRig) -> Iterator[CodexRig]:
    rig.upstream.reset()
    rig.tee.bodies.clear()
    yield rig
    # Every stream Codex read was a valid Responses stream, event by event an SDK type.
    streams = rig.tee.streams()
    assert len(streams) == len(rig.upstream.requests)
    for events in streams:
        assert_valid_stream(events)
        for event in events:
            EVENT.validate_python(event)


def tool_messages(request: dict[str, Any]) -> list[str]:
    return [json.dumps(m["content"]) if not isinstance(m["content"], str) else m["content"]
            for m in request["messages"] if m["role"] == "tool"]


def tool_names(request: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in request["tools"]}


def shell_call(model: str | None, command: str) -> tuple[str, str]:
    """The scripted model's call of Codex's shell: `exec_command`, or JavaScript in the `exec` tool."""
    if model is DEFAULT_MODEL:
        script = f"const r = await tools.exec_command({{cmd: {json.dumps(command)}}});\ntext(r.output);\n"
        return "functions__exec", json.dumps({"input": script})
    return "exec_command", json.dumps({"cmd": command})


def patch_call(model: str | None) -> tuple[str, str]:
    if model is DEFAULT_MODEL:
        # The patch tool's result is empty inside `exec`; the script reports `git status` instead.
        script = (f"await tools.apply_patch({json.dumps(PATCH)});\n"
                  "text((await tools.exec_command({cmd: \"git status --short\"})).output);\n")
        return "functions__exec", json.dumps({"input": script})
    # Codex runs an `apply_patch` heredoc given to its shell tool as its own patch tool.
    return shell_call(model, f"apply_patch <<'EOF'\n{PATCH}EOF\n")


@pytest.mark.parametrize("model", [DEFAULT_MODEL, CUSTOM_MODEL], ids=["default-model", "custom-model"])
def test_codex_shell_round_trip(codex: CodexRig, tmp_path: Path, model: str | None) -> None:
    name, arguments = shell_call(model, "echo riposte-$((6 * 7))")
    codex.upstream.enqueue(tool_calls_reply([("call_sh", name, arguments)]), text_reply("The shell said 42."))

    result = codex.run(tmp_path, model, "Run the echo.")

    assert result.returncode == 0, result.stderr[-3000:]
    assert "The shell said 42." in result.stdout
    first, second = codex.upstream.requests
    assert name in tool_names(first)
    if model is CUSTOM_MODEL:
        assert "web_search" in tool_names(first)  # Codex's web_search tool, accepted as it is
    assert first["messages"][-1]["content"][-1]["text"] == "Run the echo."
    # Codex ran the command and sent its real output back as the call's result.
    assert second["messages"][-2]["tool_calls"][0]["function"] == {"name": name, "arguments": arguments}
    assert any("riposte-42" in content for content in tool_messages(second))
    assert codex.upstream.pending == 0


@pytest.mark.parametrize("model", [DEFAULT_MODEL, CUSTOM_MODEL], ids=["default-model", "custom-model"])
def test_codex_apply_patch_round_trip(codex: CodexRig, tmp_path: Path, model: str | None) -> None:
    name, arguments = patch_call(model)
    codex.upstream.enqueue(tool_calls_reply([("call_ap", name, arguments)]), text_reply("Patched hello.txt."))

    result = codex.run(tmp_path, model, "Patch hello.txt.")

    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "repo" / "hello.txt").read_text() == "hello, patched\n"
    diff = subprocess.run(["git", "diff", "--stat"], cwd=tmp_path / "repo", capture_output=True, text=True).stdout
    assert "hello.txt" in diff
    second = codex.upstream.requests[1]
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == name
    [result_text] = tool_messages(second)
    assert "hello.txt" in result_text, result_text


def test_codex_sends_the_key_named_by_env_key_when_authentication_is_on(
    codex_bin: Path, tmp_path: Path
) -> None:
    root = tmp_path / "auth"
    data_dir, database_url = root / "data", f"sqlite+aiosqlite:///{root / 'riposte.db'}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["keys", "create", "--project", "codex", "--data-dir", str(data_dir),
                         "--database-url", database_url]) == 0
    key = out.getvalue().strip()
    with ScriptedUpstream() as upstream:
        settings = Settings(data_dir=data_dir, database_url=database_url,
                            providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")])
        with RunningServer(settings) as server:
            tee = StreamTee(server.base_url.removesuffix("/v1"))
            try:
                rig = CodexRig(server, upstream, tee, codex_bin, root)
                (tmp_path / "with-key").mkdir()
                (tmp_path / "without-key").mkdir()
                upstream.enqueue(text_reply("Authenticated."))
                signed_in = rig.run(tmp_path / "with-key", CUSTOM_MODEL, "Say hello.", key=key)
                refused = rig.run(tmp_path / "without-key", CUSTOM_MODEL, "Say hello.")
            finally:
                tee.close()
    assert signed_in.returncode == 0, signed_in.stderr[-3000:]
    assert "Authenticated." in signed_in.stdout
    assert refused.returncode != 0 and len(upstream.requests) == 1
