"""Auth tests run on a database of their own: a key created on the shared session database would
switch authentication on for every later test that uses it."""

from __future__ import annotations

import contextlib
import io
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from riposte import cli
from riposte.config import ProviderConfig
from riposte.testing.server import RunningServer
from tests.conftest import ADMIN_URL, ServerFactory, run_admin_sql, server_factory
from tests.fakes.scripted_upstream import ScriptedUpstream


@dataclass(frozen=True)
class Deployment:
    """One database and data directory, shared by the servers and the `riposte keys` CLI."""

    data_dir: Path
    database_url: str

    def keys(self, *args: str) -> tuple[int, str, str]:
        """Run `riposte keys ...` against this deployment: exit code, stdout, stderr."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["keys", *args, "--data-dir", str(self.data_dir), "--database-url", self.database_url])
        return code, out.getvalue(), err.getvalue()

    def create_key(self, project: str, *flags: str) -> str:
        code, out, err = self.keys("create", "--project", project, *flags)
        assert code == 0, err
        return out.strip()


@pytest.fixture(params=["sqlite", "postgres"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        yield Deployment(data_dir, f"sqlite+aiosqlite:///{data_dir / 'riposte.db'}")
        return
    name = f"riposte_auth_{secrets.token_hex(4)}"
    run_admin_sql(ADMIN_URL, f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield Deployment(data_dir, f"{base}/{name}")
    finally:
        run_admin_sql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        yield fake


@pytest.fixture
def start_server(deployment: Deployment, upstream: ScriptedUpstream) -> Iterator[Callable[..., RunningServer]]:
    """Start a server on the deployment, its provider the scripted upstream."""
    with server_factory(deployment.data_dir, deployment.database_url) as factory:

        def start(**overrides: Any) -> RunningServer:
            values: dict[str, Any] = {"providers": [ProviderConfig(name="fake", base_url=upstream.base_url,
                                                                   api_key="sk-upstream-secret-0123456789")]}
            values.update(overrides)
            return factory(**values)

        yield start


__all__ = ["Deployment", "ServerFactory"]


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Servers on a SQLite database of their own, for tests that storage does not concern."""
    data_dir = tmp_path / "data"
    with server_factory(data_dir, f"sqlite+aiosqlite:///{data_dir / 'riposte.db'}") as factory:
        yield factory
