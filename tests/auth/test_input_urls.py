"""Image URLs in the input pass the outbound policy: forwarded to the backend as before, or
fetched by the server (every redirect checked again) and sent on as a data URL."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from riposte.config import ProviderConfig
from riposte.engine.input_urls import InputUrlSettings
from riposte.outbound import OutboundPolicy
from riposte.testing.server import RunningServer
from tests.conftest import ServerFactory
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
                       "AAAABJRU5ErkJggg==")


class ImageHost:
    """/cat.png, /moved (a redirect to it), /page (HTML) on a loopback port."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "/cat.png")
                    self.end_headers()
                    return
                body, kind = (PNG, "image/png") if self.path == "/cat.png" else (b"<html></html>", "text/html")
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"


@pytest.fixture
def images() -> Iterator[ImageHost]:
    host = ImageHost()
    yield host
    host.http.shutdown()


def ask(server: RunningServer, url: str) -> httpx.Response:
    part = {"type": "input_image", "image_url": url}
    return httpx.post(f"{server.base_url}/responses", timeout=30,
                      json={"model": "fake/m", "input": [{"role": "user", "content": [part]}]})


def sent_image(upstream: ScriptedUpstream) -> str:
    url: str = upstream.requests[-1]["messages"][-1]["content"][0]["image_url"]["url"]
    return url


def start(sqlite_server: ServerFactory, upstream: ScriptedUpstream, **settings: Any) -> RunningServer:
    return sqlite_server(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")],
                         **settings)


def test_inline_mode_fetches_through_the_policy_and_sends_a_data_url(
    sqlite_server: ServerFactory, upstream: ScriptedUpstream, images: ImageHost
) -> None:
    server = start(sqlite_server, upstream, outbound=OutboundPolicy(allow_loopback=True),
                   input_urls=InputUrlSettings(mode="inline"))
    expected = "data:image/png;base64," + base64.b64encode(PNG).decode()
    for path in ("/cat.png", "/moved"):
        upstream.enqueue(text_reply("a cat"))
        assert ask(server, images.url + path).status_code == 200
        assert sent_image(upstream) == expected
    refused = ask(server, images.url + "/page")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_image_url"
    assert refused.json()["error"]["param"] == "input[0].content[0].image_url"


def test_forward_mode_sends_the_url_on_once_the_policy_allows_it(
    sqlite_server: ServerFactory, upstream: ScriptedUpstream, images: ImageHost
) -> None:
    server = start(sqlite_server, upstream, outbound=OutboundPolicy(allow_loopback=True))
    upstream.enqueue(text_reply("a cat"))
    assert ask(server, images.url + "/cat.png").status_code == 200
    assert sent_image(upstream) == images.url + "/cat.png"


@pytest.mark.parametrize("mode", ["forward", "inline"])
def test_denied_urls_are_400s_before_the_model_is_called(
    sqlite_server: ServerFactory, upstream: ScriptedUpstream, images: ImageHost, mode: str
) -> None:
    server = start(sqlite_server, upstream, input_urls=InputUrlSettings(mode=mode))  # type: ignore[arg-type]
    for url in (images.url + "/cat.png", "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/x.png"):
        reply = ask(server, url)
        assert reply.status_code == 400, url
        assert reply.json()["error"]["param"] == "input[0].content[0].image_url"
    assert upstream.requests == []


@pytest.mark.parametrize("mode", ["forward", "inline"])
def test_an_image_url_of_another_scheme_is_a_400_and_a_data_url_goes_on(
    sqlite_server: ServerFactory, upstream: ScriptedUpstream, mode: str
) -> None:
    # A backend may read file: URLs from its own disk, outside the outbound policy.
    server = start(sqlite_server, upstream, input_urls=InputUrlSettings(mode=mode))  # type: ignore[arg-type]
    for url in ("file:///etc/passwd", "FILE:///etc/passwd", "ftp://example.com/cat.png", "javascript:alert(1)",
                "cat.png"):
        reply = ask(server, url)
        assert reply.status_code == 400, url
        assert reply.json()["error"]["code"] == "invalid_image_url"
        assert reply.json()["error"]["param"] == "input[0].content[0].image_url"
    assert upstream.requests == []
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    upstream.enqueue(text_reply("a dot"))
    assert ask(server, data_url).status_code == 200
    assert sent_image(upstream) == data_url
