"""Starting and stopping the processes under test: the fake upstream, Riposte and OGX.

Each runs in its own session with its output in a log file; stopping signals that one process
(SIGTERM, then SIGKILL to the session it leads if it does not go).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

READY_POLL_S = 0.1


class ServerFailed(RuntimeError):
    pass


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    port: int
    log_path: Path
    popen: subprocess.Popen[bytes]
    shown_env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def command(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.shown_env.items())
        return f"{env} {' '.join(self.args)}".strip()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)


def start(name: str, args: list[str], *, port: int, log_path: Path, ready_path: str, ready_timeout: float,
          env: dict[str, str] | None = None, cwd: Path | None = None) -> ManagedProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RIPOSTE_")}
    full_env.update(env or {})
    with log_path.open("wb") as log:
        popen = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                 start_new_session=True)
    process = ManagedProcess(name, args, port, log_path, popen, shown_env=env or {})
    try:
        _wait_ready(process, ready_path, ready_timeout)
    except ServerFailed:
        process.stop()
        raise
    return process


def _wait_ready(process: ManagedProcess, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise ServerFailed(f"{process.name} exited with {process.popen.returncode}:\n{_tail(process.log_text())}")
        if _answers(process.port, path):
            return
        time.sleep(READY_POLL_S)
    raise ServerFailed(f"{process.name} did not answer GET {path} within {timeout:.0f} s:\n"
                       f"{_tail(process.log_text())}")


def _answers(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def start_fake_upstream(port: int, work: Path) -> ManagedProcess:
    args = [sys.executable, "-m", "bench.fake_upstream", "--port", str(port)]
    return start("fake upstream", args, port=port, log_path=work / "fake_upstream.log", ready_path="/v1/models",
                 ready_timeout=15)


def start_riposte(*, port: int, upstream_url: str, database_url: str, workers: int, work: Path, tag: str,
                  src: Path | None = None, settings: dict[str, Any] | None = None) -> ManagedProcess:
    """Through the real CLI, as a user would run it; `src` runs another source tree (for before/after);
    `settings` go into its settings file as well."""
    data_dir = work / f"riposte-{tag}"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "riposte.yaml"
    config.write_text(yaml.safe_dump(riposte_settings(upstream_url, settings or {})))
    args = [sys.executable, "-m", "riposte", "serve", "--config", str(config), "--port", str(port),
            "--workers", str(workers), "--data-dir", str(data_dir), "--database-url", database_url]
    env = {"PYTHONPATH": str(src.resolve())} if src is not None else {}
    return start(f"riposte ({tag})", args, port=port, log_path=data_dir / "server.log", ready_path="/health",
                 ready_timeout=60, env=env)


def riposte_settings(upstream_url: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings file's contents: the fake upstream as the one provider, and `settings`, each
    where it belongs (a provider's own setting, such as `paced_read_window_ms`, on that provider)."""
    from riposte.config import ProviderConfig

    provider: dict[str, Any] = {"name": "fake", "base_url": upstream_url, "api_key": "bench"}
    top: dict[str, Any] = {"log_level": "warning"}
    for key, value in settings.items():
        (provider if key in ProviderConfig.model_fields else top)[key] = value
    return {"providers": [provider], **top}


def start_ogx(*, ogx_bin: Path, config: Path, port: int, upstream_url: str, work: Path,
              tiktoken_dir: Path) -> ManagedProcess:
    home = work / "ogx"
    for sub in ("store", "files"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = {
        "OPENAI_API_KEY": "bench",
        "OPENAI_BASE_URL": upstream_url,
        "SQLITE_STORE_DIR": str(home / "store"),
        "FILES_STORAGE_DIR": str(home / "files"),
        "TIKTOKEN_CACHE_DIR": str(tiktoken_dir),
        "HF_HUB_OFFLINE": "1",
        "OTEL_SDK_DISABLED": "true",
    }
    # --insecure: OGX 1.5.0 refuses plain HTTP without it, even on loopback.
    args = [str(ogx_bin), "stack", "run", str(config), "--port", str(port), "--insecure"]
    return start("ogx", args, port=port, log_path=home / "server.log", ready_path="/v1/models", ready_timeout=180,
                 env=env, cwd=home)
