"""A fake of the Tavily and Brave search APIs on a loopback port, counting every TCP connection.

Tests point `web_search.tavily.base_url` / `web_search.brave.base_url` at it, enqueue results, and
afterwards read what arrived (`requests`) and how many connections were opened (`connections`):
a test that expects no outbound request asserts `connections == 0`, which nothing in the server
can get around.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON = dict[str, Any]


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSearch) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def get_request(self) -> tuple[socket.socket, Any]:
        accepted = super().get_request()
        with self.fake.lock:
            self.fake.connections += 1
        return accepted


class _Handler(BaseHTTPRequestHandler):
    server: _CountingServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:  # Tavily: POST /search
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self._answer("tavily", body)

    def do_GET(self) -> None:  # Brave: GET /web/search?q=...
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        self._answer("brave", query)

    def _answer(self, provider: str, arguments: JSON) -> None:
        fake = self.server.fake
        with fake.lock:
            fake.requests.append({"provider": provider, "path": urlsplit(self.path).path, "arguments": arguments,
                                  "headers": {k.lower(): v for k, v in self.headers.items()}})
            status, results = fake.status, list(fake.results)
        payload = _tavily_payload(arguments, results) if provider == "tavily" else _brave_payload(results)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _tavily_payload(arguments: JSON, results: list[JSON]) -> JSON:
    return {"query": arguments.get("query"), "response_time": 0.1,
            "results": [{"url": r["url"], "title": r["title"], "content": r["content"], "score": r.get("score", 0.5),
                         "raw_content": None} for r in results]}


def _brave_payload(results: list[JSON]) -> JSON:
    return {"type": "search", "web": {"results": [
        {"url": r["url"], "title": r["title"], "description": r["content"]} for r in results]}}


class FakeSearch:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[JSON] = []
        self.results: list[JSON] = []
        self.status = 200
        self._server = _CountingServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-search", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeSearch:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
