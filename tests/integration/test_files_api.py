"""`/v1/files` through the official SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai.types import FileDeleted, FileObject

from riposte.testing.server import RunningServer
from tests.conftest import ServerFactory
from tests.integration.sdk import sdk


@pytest.fixture
def server(make_server: ServerFactory) -> RunningServer:
    return make_server()


def test_upload_list_retrieve_content_delete(server: RunningServer) -> None:
    client = sdk(server)
    raw = client.files.with_raw_response.create(file=("notes.md", b"# Notes\nhello"), purpose="assistants")
    uploaded = FileObject.model_validate(raw.http_response.json())
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose, uploaded.status) == \
        ("notes.md", 13, "assistants", "processed")
    assert uploaded.id.startswith("file-")
    other = client.files.create(file=("batch.jsonl", b"{}\n"), purpose="batch")

    # The PostgreSQL database is shared by the session's tests: look only at this test's files.
    mine = {uploaded.id, other.id}
    assert [f.id for f in client.files.list() if f.id in mine] == [other.id, uploaded.id]
    assert [f.id for f in client.files.list(order="asc") if f.id in mine] == [uploaded.id, other.id]
    assert [f.id for f in client.files.list(purpose="batch") if f.id in mine] == [other.id]
    assert uploaded.id not in {f.id for f in client.files.list(purpose="batch")}
    page = client.files.list(limit=1)
    assert [f.id for f in page.data] == [other.id] and page.has_more
    assert [f.id for f in client.files.list(limit=1, after=other.id).data] == [uploaded.id]

    assert client.files.retrieve(uploaded.id).model_dump() == uploaded.model_dump()
    assert client.files.content(uploaded.id).read() == b"# Notes\nhello"

    deleted = client.files.with_raw_response.delete(uploaded.id)
    assert FileDeleted.model_validate(deleted.http_response.json()) == \
        FileDeleted(id=uploaded.id, deleted=True, object="file")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(uploaded.id)


def test_client_filenames_never_become_paths(server: RunningServer) -> None:
    uploaded = sdk(server).files.create(file=("../../etc/passwd", b"x"), purpose="user_data")
    assert uploaded.filename == "passwd"
    stored = server.settings.data_dir.resolve() / "files" / uploaded.id
    assert stored.read_bytes() == b"x"


def test_expires_after_sets_expires_at(server: RunningServer) -> None:
    uploaded = sdk(server).files.create(file=("a.txt", b"a"), purpose="assistants",
                                        expires_after={"anchor": "created_at", "seconds": 3600})
    assert uploaded.expires_at == uploaded.created_at + 3600


@pytest.mark.parametrize(("form", "param"), [
    ({"purpose": "assistants"}, "file"),
    ({"purpose": "wrong"}, "purpose"),
    ({"purpose": "assistants", "expires_after[anchor]": "created_at", "expires_after[seconds]": "5"},
     "expires_after[seconds]"),
    ({"purpose": "assistants", "expires_after[anchor]": "now", "expires_after[seconds]": "3600"},
     "expires_after[anchor]"),
])
def test_bad_uploads_are_400s_naming_the_parameter(server: RunningServer, form: dict[str, str], param: str) -> None:
    files = None if param == "file" else {"file": ("a.txt", b"a")}
    reply = httpx.post(f"{server.base_url}/files", data=form, files=files)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param


def test_a_form_the_server_will_not_read_is_a_400_in_the_envelope_naming_the_part(server: RunningServer) -> None:
    two_files = httpx.post(f"{server.base_url}/files", data={"purpose": "assistants"},
                           files=[("file", ("a.txt", b"a")), ("file", ("b.txt", b"b"))])
    many_fields = httpx.post(f"{server.base_url}/files", data={f"field{n}": "x" for n in range(40)},
                             files={"file": ("a.txt", b"a")})
    for reply, param in ((two_files, "file"), (many_fields, "body")):
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"] | {"message": ""} == {
            "message": "", "type": "invalid_request_error", "param": param, "code": "invalid_multipart"}


def test_missing_files_are_404s(server: RunningServer) -> None:
    for path in ("/files/file-nope", "/files/file-nope/content"):
        reply = httpx.get(f"{server.base_url}{path}")
        assert reply.status_code == 404
        assert reply.json()["error"]["type"] == "invalid_request_error"
    assert httpx.delete(f"{server.base_url}/files/file-nope").status_code == 404


def test_files_over_the_size_limit_are_413s(make_server: ServerFactory) -> None:
    server = make_server(max_file_bytes=1000)
    client = sdk(server)
    with pytest.raises(openai.APIStatusError) as raised:
        client.files.create(file=("big.txt", b"x" * 1001), purpose="assistants")
    assert raised.value.status_code == 413
    accepted = client.files.create(file=("ok.txt", b"x" * 1000), purpose="assistants")
    assert accepted.bytes == 1000
    assert "big.txt" not in {f.filename for f in client.files.list()}
    assert [path.name for path in (server.settings.data_dir / "files").iterdir()] == [accepted.id]
