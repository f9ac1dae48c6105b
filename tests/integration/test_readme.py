"""Every README block marked `<!-- runnable: KIND -->` runs as written, in a fresh directory, against
a server of that kind on a free port (the block's `http://127.0.0.1:8321` is pointed there):

- `live`: live mode, the default provider `openai` being a local fake upstream;
- `replay-seeds`: replay mode over the shipped recordings in `examples/recordings`;
- `shell-live`: a bash block against the `live` server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from riposte.config import InferenceMode, ProviderConfig, Settings
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DEFAULT_URL = "http://127.0.0.1:8321"
_BLOCK = re.compile(r"<!-- runnable: (?P<kind>[\w-]+) -->\n```(?P<lang>python|bash)\n(?P<code>.*?)```", re.S)


def runnable_blocks() -> list[tuple[str, str, str, int]]:
    text = README.read_text()
    return [(match["kind"], match["lang"], match["code"], text.count("\n", 0, match.start()) + 1)
            for match in _BLOCK.finditer(text)]


def test_the_readme_marks_its_snippets_runnable() -> None:
    kinds = {kind for kind, _, _, _ in runnable_blocks()}
    assert {"live", "replay-seeds", "shell-live"} <= kinds


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("readme-live")
    with ScriptedUpstream() as upstream:
        upstream.enqueue(*[text_reply(f"answer {n}") for n in range(500)])
        settings = Settings(data_dir=tmp, providers=[ProviderConfig(name="openai", base_url=upstream.base_url)])
        with RunningServer(settings) as server:
            yield server


@pytest.fixture(scope="module")
def replay_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("readme-replay"), inference_mode=InferenceMode.REPLAY,
                        recordings_dir=REPO / "examples" / "recordings",
                        providers=[ProviderConfig(name="openai", base_url="https://api.openai.com/v1")])
    with RunningServer(settings) as server:
        yield server


_SERVERS = {"live": "live_server", "replay-seeds": "replay_server", "shell-live": "live_server"}


@pytest.mark.parametrize(("kind", "lang", "code", "line"), runnable_blocks(),
                         ids=[f"README.md:{line}-{kind}" for kind, _, _, line in runnable_blocks()])
def test_readme_block_runs_as_written(
    kind: str, lang: str, code: str, line: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    server: RunningServer = request.getfixturevalue(_SERVERS[kind])
    script = code.replace(DEFAULT_URL, server.base_url.removesuffix("/v1"))
    command = [sys.executable, "-c", script] if lang == "python" else ["bash", "-euo", "pipefail", "-c", script]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"README.md line {line} failed:\n{run.stdout}\n{run.stderr}"
    assert run.stdout.strip(), f"README.md line {line} printed nothing"
