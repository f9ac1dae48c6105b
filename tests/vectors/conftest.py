"""Fixtures for the vector store suites: each runs on the embedded index (SQLite + sqlite-vec)
and on PostgreSQL + pgvector (an embedded PostgreSQL 18, started once per session)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from riposte.config import ProviderConfig
from riposte.testing.server import RunningServer
from tests.conftest import ServerFactory, run_admin_sql, server_factory
from tests.fakes.scripted_upstream import ScriptedUpstream
from tests.vectors.embedded_pg import EmbeddedPostgres


@pytest.fixture(scope="session")
def embedded_pg() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres() as server:
        yield server


@pytest.fixture
def pgvector_database_url(embedded_pg: EmbeddedPostgres) -> Iterator[str]:
    """A fresh database on the embedded server, dropped after the test."""
    name = f"riposte_{secrets.token_hex(4)}"
    run_admin_sql(embedded_pg.admin_url, f'CREATE DATABASE "{name}"')
    yield embedded_pg.url(name)
    run_admin_sql(embedded_pg.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite-vec", "pgvector"])
def vector_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test that takes this runs once per index: the main database decides which."""
    if request.param == "sqlite-vec":
        return f"sqlite+aiosqlite:///{tmp_path / 'riposte.db'}"
    url: str = request.getfixturevalue("pgvector_database_url")
    return url


@pytest.fixture
def make_vector_server(tmp_path: Path, vector_database_url: str) -> Iterator[ServerFactory]:
    with server_factory(tmp_path / "data", vector_database_url) as factory:
        yield factory


@pytest.fixture
def embedding_upstream() -> Iterator[ScriptedUpstream]:
    """A scripted upstream whose `/v1/embeddings` answers with deterministic hash vectors."""
    with ScriptedUpstream() as fake:
        yield fake


@pytest.fixture
def vector_server(make_vector_server: ServerFactory, embedding_upstream: ScriptedUpstream) -> RunningServer:
    """Provider `fake` is the scripted upstream, so `fake/<model>` embeds without any model download."""
    return make_vector_server(providers=[ProviderConfig(name="fake", base_url=embedding_upstream.base_url,
                                                        api_key="x")])
