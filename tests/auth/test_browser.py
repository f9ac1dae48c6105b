"""Browser protections: JSON bodies only, known Host values only, CORS only for configured origins."""

from __future__ import annotations

import httpx

from riposte.auth.settings import AuthSettings
from tests.conftest import ServerFactory

PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}


def test_a_text_plain_json_body_is_refused(sqlite_server: ServerFactory) -> None:
    server = sqlite_server()
    body = b'{"model": "m", "input": "hi"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        reply = httpx.post(f"{server.base_url}/conversations", content=body, headers=headers)
        assert reply.status_code == 415, reply.text
        assert reply.json()["error"]["code"] == "unsupported_media_type"
    created = httpx.post(f"{server.base_url}/conversations", content=b"{}",
                         headers={"Content-Type": "application/json; charset=utf-8"})
    assert created.status_code == 200, created.text


def test_a_bodyless_post_needs_no_content_type(sqlite_server: ServerFactory) -> None:
    """`curl -X POST .../responses/{id}/cancel`, as OpenAI documents it: no body, no Content-Type."""
    server = sqlite_server()
    reply = httpx.post(f"{server.base_url}/responses/resp_unknown/cancel")
    assert "content-type" not in reply.request.headers
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"]["param"] == "response_id"
    # An endpoint that needs a body says so itself, naming what is missing.
    empty = httpx.post(f"{server.base_url}/responses", headers={"Content-Length": "0"})
    assert empty.status_code == 400, empty.text
    assert empty.json()["error"]["code"] == "invalid_json", empty.text
    assert empty.json()["error"]["param"] == "body"


def test_an_unknown_host_is_refused(sqlite_server: ServerFactory) -> None:
    server = sqlite_server()
    for host in ("evil.example", "evil.example:8321", "127.0.0.1.evil.example"):
        reply = httpx.get(f"{server.base_url}/models", headers={"Host": host})
        assert reply.status_code == 421, host
        assert reply.json()["error"]["code"] == "invalid_host"
    port = server.settings.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]"):
        assert httpx.get(f"{server.base_url}/models", headers={"Host": host}).status_code == 200, host


def test_configured_hosts_replace_the_defaults(sqlite_server: ServerFactory) -> None:
    server = sqlite_server(auth=AuthSettings(allowed_hosts=["riposte.internal"]))
    assert httpx.get(f"{server.base_url}/models", headers={"Host": "riposte.internal:443"}).status_code == 200
    assert httpx.get(f"{server.base_url}/models").status_code == 421


def test_cors_is_off_unless_origins_are_configured(sqlite_server: ServerFactory) -> None:
    server = sqlite_server()
    origin = {"Origin": "https://app.example"}
    preflight = httpx.options(f"{server.base_url}/responses", headers={**origin, **PREFLIGHT})
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code >= 400
    # A simple cross-site write (no preflight) from a page is refused too.
    write = httpx.post(f"{server.base_url}/conversations", json={}, headers=origin)
    assert write.status_code == 403
    assert write.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in write.headers


def test_cors_preflight_is_answered_only_for_configured_origins(sqlite_server: ServerFactory) -> None:
    server = sqlite_server(auth=AuthSettings(cors_origins=["https://app.example"]))
    allowed = httpx.options(f"{server.base_url}/responses", headers={"Origin": "https://app.example", **PREFLIGHT})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = httpx.options(f"{server.base_url}/responses", headers={"Origin": "https://evil.example", **PREFLIGHT})
    assert "access-control-allow-origin" not in other.headers
    write = httpx.post(f"{server.base_url}/conversations", json={}, headers={"Origin": "https://app.example"})
    assert write.status_code == 200
    assert write.headers["access-control-allow-origin"] == "https://app.example"
    refused = httpx.post(f"{server.base_url}/conversations", json={}, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
