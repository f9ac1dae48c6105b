"""A failed request never poisons its keep-alive connection (issue 8, defect 10).

The cause was at the edge: Starlette's last-resort handler sends its 500 and re-raises, and uvicorn
closes the connection of an application that raised after its response started, without having
told the client (`Connection: close`). The client's next request on that connection met a reset.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from riposte.app import create_app
from riposte.config import ProviderConfig, Settings
from riposte.testing.server import free_port


@pytest.fixture(params=["h11", "httptools"])
def port(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    settings = Settings(data_dir=tmp_path, providers=[ProviderConfig(name="x", base_url="http://127.0.0.1:9/v1")])
    app = create_app(settings)

    async def crash() -> None:
        raise RuntimeError("a bug in a handler")

    app.add_api_route("/crash", crash)
    chosen = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=chosen, http=request.param,
                                           log_level="critical"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield chosen
    server.should_exit = True
    thread.join(10)


def _exchange(sock: socket.socket, path: str) -> bytes:
    host, port = sock.getpeername()[:2]
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        piece = sock.recv(65536)
        assert piece, f"the server closed the connection instead of answering {path}"
        head += piece
    headers, _, body = head.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in headers.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return headers.split(b"\r\n")[0] + b" " + body


def test_requests_after_a_500_reuse_the_same_connection(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(20):
            crashed = _exchange(sock, "/crash")
            assert crashed.startswith(b"HTTP/1.1 500") and b'"type":"server_error"' in crashed
            assert _exchange(sock, "/health").startswith(b"HTTP/1.1 200")
