"""A Riposte server in a subprocess, started with `python -m riposte serve` as a user would, with
its log captured: for the tests that read what an operator sees."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx
import orjson

from riposte.testing.server import free_port

SRC = Path(__file__).resolve().parents[2] / "src"


class ServerProcess:
    def __init__(self, *args: str, env: dict[str, str] | None = None, data_dir: Path) -> None:
        self.port = free_port()
        self._args = [sys.executable, "-m", "riposte", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                      "--data-dir", str(data_dir), *args]
        # The sources under test first, whichever checkout the venv was installed from.
        python_path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
        self._env = {**os.environ, "PYTHONPATH": python_path, **(env or {})}
        self._process: subprocess.Popen[bytes] | None = None
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def env(self) -> dict[str, str]:
        """The environment the server runs in (its sources first on the path)."""
        return dict(self._env)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> ServerProcess:
        self._process = subprocess.Popen(self._args, env=self._env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("riposte serve exited:\n" + "\n".join(self._lines))
            try:
                if httpx.get(f"{self.root_url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("riposte serve did not become healthy:\n" + "\n".join(self._lines))

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in self._process.stdout:
            self._lines.append(raw.decode(errors="replace").rstrip("\n"))

    def lines(self) -> list[str]:
        return list(self._lines)

    def json_lines(self) -> list[dict[str, object]]:
        """The log as JSON objects (with --log-format json); anything else is skipped."""
        parsed: list[dict[str, object]] = []
        for line in self.lines():
            if line.startswith("{"):
                try:
                    parsed.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
        return parsed

    def wait_for_log(self, predicate: object, timeout: float = 10) -> dict[str, object]:
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.json_lines():
                if predicate(line):
                    return line
            time.sleep(0.05)
        raise AssertionError("no matching log line in:\n" + "\n".join(self.lines()))

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash."""
        assert self._process is not None
        self._process.kill()
        self._process.wait()

    def terminate(self) -> int:
        """SIGTERM, then wait for the graceful exit; returns the exit code."""
        self.send_sigterm()
        return self.wait()

    def send_sigterm(self) -> None:
        """SIGTERM without waiting: the test goes on talking to the draining server."""
        assert self._process is not None
        self._process.terminate()

    def wait(self, timeout: float = 60) -> int:
        """The exit code, once the process has ended."""
        assert self._process is not None
        return self._process.wait(timeout=timeout)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
