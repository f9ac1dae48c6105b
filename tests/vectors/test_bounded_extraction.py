"""PDF and HTML text extraction runs in a bounded child process: a file past the time or memory
limit fails with `last_error` naming the setting, and the server keeps serving meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from riposte.config import ProviderConfig
from riposte.testing.server import RunningServer
from tests.conftest import server_factory
from tests.fakes.scripted_upstream import ScriptedUpstream
from tests.unit.test_vector_pieces import minimal_pdf
from tests.vectors.helpers import client, upload, wait_for_file
from tests.vectors.hostile_files import large_html, slow_pdf


@pytest.fixture
def bounded_server(tmp_path: Path, embedding_upstream: ScriptedUpstream,
                   request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """A test's own limits (`@pytest.mark.parametrize("bounded_server", [{...}], indirect=True)`),
    small, so that crossing them takes neither a minute nor a gigabyte."""
    limits = getattr(request, "param", {})
    with server_factory(tmp_path / "data", f"sqlite+aiosqlite:///{tmp_path / 'riposte.db'}") as factory:
        yield factory(providers=[ProviderConfig(name="fake", base_url=embedding_upstream.base_url, api_key="x")],
                      **limits)


def _attach(server: RunningServer, name: str, data: bytes) -> tuple[str, str]:
    sdk = client(server)
    store = sdk.vector_stores.create(name="docs", extra_body={"embedding_model": "fake/emb",
                                                              "embedding_dimension": 8})
    file_id = upload(sdk, name, data)
    sdk.vector_stores.files.create(vector_store_id=store.id, file_id=file_id)
    return store.id, file_id


@pytest.mark.parametrize("bounded_server", [{"extraction_timeout_seconds": 3}], indirect=True)
def test_a_pdf_past_the_time_limit_fails_while_the_server_keeps_answering(bounded_server: RunningServer) -> None:
    store_id, file_id = _attach(bounded_server, "slow.pdf", slow_pdf(400_000))
    sdk = client(bounded_server)
    health = httpx.get(bounded_server.base_url.removesuffix("/v1") + "/health", timeout=5)
    assert health.status_code == 200
    assert sdk.vector_stores.files.retrieve(vector_store_id=store_id, file_id=file_id).status == "in_progress"

    failed = wait_for_file(sdk, store_id, file_id)
    assert failed.status == "failed"
    assert failed.last_error is not None and "extraction_timeout_seconds" in failed.last_error.message


@pytest.mark.parametrize("bounded_server", [{"extraction_memory_mb": 128}], indirect=True)
def test_html_past_the_memory_limit_fails_naming_the_setting(bounded_server: RunningServer) -> None:
    store_id, file_id = _attach(bounded_server, "huge.html", large_html(6_000_000))
    failed = wait_for_file(client(bounded_server), store_id, file_id)
    assert failed.status == "failed"
    assert failed.last_error is not None and "extraction_memory_mb" in failed.last_error.message


def test_ordinary_pdf_and_html_still_extract_in_the_worker(bounded_server: RunningServer) -> None:
    sdk = client(bounded_server)
    for name, data, expected in (("a.pdf", minimal_pdf("Saturn has rings"), "Saturn has rings"),
                                 ("b.html", b"<p>Jupiter &amp; its moons</p>", "Jupiter & its moons")):
        store_id, file_id = _attach(bounded_server, name, data)
        assert wait_for_file(sdk, store_id, file_id).status == "completed"
        content = sdk.vector_stores.files.content(vector_store_id=store_id, file_id=file_id)
        assert expected in "".join(part.text or "" for part in content)
