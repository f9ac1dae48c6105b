"""Fixtures for modules whose tests only add rows of their own: one scripted upstream and one
server per storage backend for the whole module, instead of one per test.

Import them into a test module: `from tests.integration.module_servers import server, upstream`.
A module that needs other settings for its servers sets them in `SERVER_SETTINGS` (a dict).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from riposte.config import ProviderConfig
from riposte.testing.server import RunningServer
from tests.conftest import server_factory
from tests.fakes.scripted_upstream import ScriptedUpstream


@pytest.fixture(scope="module")
def module_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        yield fake


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           module_upstream: ScriptedUpstream) -> Iterator[RunningServer]:
    """A live-mode server whose provider `fake` is the module's scripted upstream."""
    data_dir: Path = tmp_path_factory.mktemp("module-server")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{data_dir / 'riposte.db'}"
    else:
        url = request.getfixturevalue("postgres_database_url")
    with server_factory(data_dir, url) as factory:
        yield factory(providers=[ProviderConfig(name="fake", base_url=module_upstream.base_url, api_key="x")],
                      **getattr(request.module, "SERVER_SETTINGS", {}))


@pytest.fixture
def upstream(module_upstream: ScriptedUpstream) -> Iterator[ScriptedUpstream]:
    """The module's upstream with no replies queued and no requests seen."""
    module_upstream.reset()
    yield module_upstream
