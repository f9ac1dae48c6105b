"""A real headless Chromium for the inspector's browser tests and its README screenshot.

Debian's `chromium` package is installed by the first session that needs it (`apt-get install -y
chromium`, as root, idempotent), and `playwright-core` from npm as tests/ui/driver/package-lock.json
pins it (tests/clients/npm.py). The browser runs in a Node process (driver.mjs) that takes one JSON
command per line; every console error and uncaught page error is collected, and the tests fail on any.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.clients.npm import npm_installed

DRIVER_DIR = Path(__file__).parent / "driver"
CHROMIUM = Path("/usr/bin/chromium")


class BrowserError(AssertionError):
    pass


@functools.cache
def chromium_installed() -> Path:
    """Debian's chromium, installed once if it is missing."""
    if not CHROMIUM.exists():
        assert os.geteuid() == 0, "the browser tests install Debian's chromium, which needs root (or install it first)"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, timeout=1200).returncode != 0:
            # A fresh machine may not have package lists yet.
            subprocess.run(["apt-get", "update"], env=env, stdout=subprocess.DEVNULL, check=True, timeout=600)
            subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=True, timeout=1200)
    assert CHROMIUM.exists(), "apt-get installed chromium, but /usr/bin/chromium is missing"
    return CHROMIUM


class Browser:
    """One page of one headless chromium; `with Browser() as browser:`."""

    def __init__(self) -> None:
        chromium = chromium_installed()
        npm_installed(DRIVER_DIR)
        node = shutil.which("node")
        assert node is not None, "node is needed to drive the browser"
        self._profile = tempfile.TemporaryDirectory(prefix="riposte-chromium-")
        self._process = subprocess.Popen(
            [node, str(DRIVER_DIR / "driver.mjs"), self._profile.name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, cwd=DRIVER_DIR, env={**os.environ, "RIPOSTE_CHROMIUM": str(chromium)})
        self._ids = itertools.count(1)

    def call(self, op: str, **args: Any) -> Any:
        assert self._process.stdin is not None and self._process.stdout is not None
        command_id = next(self._ids)
        self._process.stdin.write(json.dumps({"id": command_id, "op": op, "args": args}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise BrowserError(f"the browser driver exited (code {self._process.poll()}) during {op}")
        answer = json.loads(line)
        assert answer["id"] == command_id
        if not answer["ok"]:
            raise BrowserError(f"{op}({args}) failed: {answer['error']}")
        return answer["value"]

    def goto(self, url: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("goto", url=url)
        return result

    def text(self, selector: str) -> str:
        return str(self.call("text", selector=selector))

    def count(self, selector: str) -> int:
        return int(self.call("count", selector=selector))

    def url(self) -> str:
        return str(self.call("url"))

    def problems(self) -> list[str]:
        """Console and page errors since the last call."""
        found: list[str] = self.call("problems")
        return found

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.call("screenshot", path=str(path))
        return path

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
