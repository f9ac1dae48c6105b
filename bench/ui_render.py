"""The web inspector's page times: a stored response of 200 items, and a list of 200 responses.

    python -m bench.ui_render [--requests 30] [--label L] [--riposte-src DIR]

Stores, on a fresh SQLite database, a response whose timeline holds 200 items (100 input
messages, 100 output items with citations and tool calls) and a trace of 10 upstream calls and 10
file_search calls, plus 200 more small responses; then runs the real server (in this process, on a
loopback port) with authentication on and times its answers to GET /ui/responses/{id} and GET
/ui/responses?limit=200, logged in. Server time is the time the server spent on the request, read
from its request log line (`duration_ms`), so the client and the loopback are not in it; the
target is under 200 ms. It writes its section of bench/RESULTS.md (kept by `python -m bench`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import sections

SECTION = "ui-render"
ITEMS = 200
TARGET_MS = 200.0


def _turn(index: int, items: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A response object, its input items and a trace, shaped like a long file_search agent turn."""
    half = items // 2
    input_items = [{"id": f"msg_in{index}_{n}", "type": "message", "role": "user" if n % 2 == 0 else "assistant",
                    "content": [{"type": "input_text", "text": f"Question {n} about the documents, " * 6}]}
                   for n in range(half)]
    output: list[dict[str, Any]] = []
    for n in range(half):
        if n % 4 == 0:
            output.append({"id": f"fs_{index}_{n}", "type": "file_search_call", "status": "completed",
                           "queries": [f"query {n}"], "results": None})
        elif n % 4 == 1:
            output.append({"id": f"rs_{index}_{n}", "type": "reasoning", "summary": [
                {"type": "summary_text", "text": "Thinking about which chunk answers it. " * 4}]})
        else:
            text = f"Answer part {n}: the documents say so. " * 5
            output.append({"id": f"msg_out{index}_{n}", "type": "message", "role": "assistant", "status": "completed",
                           "content": [{"type": "output_text", "text": text, "annotations": [
                               {"type": "file_citation", "file_id": f"file-{n % 7}", "filename": f"doc{n % 7}.txt",
                                "index": len(text) // 2}]}]})
    messages = [{"role": "user", "content": f"Question {n} " * 30} for n in range(half)]
    steps: list[dict[str, Any]] = []
    for call in range(10):
        steps.append({"kind": "upstream_call", "started_at": time.time(), "duration_ms": 812.5,
                      "first_chunk_ms": 95.1, "recordings": [],
                      "request": {"model": "planets", "messages": messages if call == 0 else messages[-2:],
                                  "stream": True}, **({"request_shared_messages": half + 2 * (call - 1)}
                                                      if call else {}),
                      "answer": {"object": "chat.completion", "finish_reason": "tool_calls",
                                 "message": {"role": "assistant", "content": None, "tool_calls": [
                                     {"id": f"call_{call}", "type": "function",
                                      "function": {"name": "knowledge_search", "arguments": '{"query": "q"}'}}]},
                                 "usage": {"prompt_tokens": 4000, "completion_tokens": 40}}})
        steps.append({"kind": "tool_call", "tool_type": "file_search_call", "name": "knowledge_search",
                      "call_id": f"call_{call}", "arguments": '{"query": "q"}', "started_at": time.time(),
                      "duration_ms": 31.0, "failed": False, "status": "completed", "error": None,
                      "result": "knowledge_search tool found 10 chunks: " + "chunk text " * 200,
                      "result_truncated": False,
                      "sources": [{"file_id": f"file-{k}", "filename": f"doc{k}.txt", "chunk_index": k,
                                   "score": 0.9 - k / 20, "text": "chunk text " * 40, "vector_store_id": "vs_b"}
                                  for k in range(10)]})
    response = {"id": f"resp_bench{index:04d}", "object": "response", "created_at": int(time.time()),
                "status": "completed", "model": "fake/planets", "output": output, "tools": [],
                "usage": {"input_tokens": 40000, "output_tokens": 4000, "total_tokens": 44000,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}}
    return response, input_items, steps


async def _store(database_url: str, responses: int) -> str:
    from riposte.store.database import create_engine, migrate
    from riposte.store.ownership import Owner
    from riposte.store.responses import NewResponse, ResponseStore

    engine = create_engine(database_url)
    await migrate(engine)
    store = ResponseStore(engine).owned_by(Owner(project="bench"))
    try:
        for index in range(responses + 1):
            response, items, steps = _turn(index, ITEMS if index == responses else 4)
            opened = await store.create(NewResponse({**response, "status": "in_progress"}, items, None, 0, 0))
            await store.finish(opened, response, [], steps)
    finally:
        await engine.dispose()
    return f"resp_bench{responses:04d}"


class _Durations(logging.Handler):
    """Collects `duration_ms` of the server's request log lines, by path."""

    def __init__(self) -> None:
        super().__init__()
        self.by_path: dict[str, list[float]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", None) or {}
        if "duration_ms" in fields and "path" in fields:
            self.by_path.setdefault(str(fields["path"]), []).append(float(fields["duration_ms"]))


def run(requests: int) -> dict[str, Any]:
    from riposte import cli
    from riposte.config import ProviderConfig, Settings
    from riposte.testing.server import RunningServer

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        url = f"sqlite+aiosqlite:///{data / 'riposte.db'}"
        big = asyncio.run(_store(url, ITEMS))
        with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
            cli.main(["keys", "create", "--project", "bench", "--data-dir", str(data), "--database-url", url])
        key = out.getvalue().strip()
        durations = _Durations()
        access = logging.getLogger("riposte.access")
        access.setLevel(logging.INFO)
        access.addHandler(durations)
        settings = Settings(data_dir=data, database_url=url, log_level="warning",
                            providers=[ProviderConfig(name="fake", base_url="http://127.0.0.1:9/v1")])
        with RunningServer(settings) as server, httpx.Client(base_url=server.base_url.removesuffix("/v1")) as http:
            login = http.get("/ui/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            assert token is not None
            assert http.post("/ui/login", data={"api_key": key, "csrf_token": token[1]}).status_code == 303
            pages = {"timeline": f"/ui/responses/{big}", "list": "/ui/responses?limit=200"}
            figures: dict[str, Any] = {}
            for name, path in pages.items():
                sizes = []
                for _ in range(requests):
                    answer = http.get(path)
                    assert answer.status_code == 200, answer.text[:500]
                    sizes.append(len(answer.content))
                logged = durations.by_path.setdefault(path.split("?")[0], [])
                deadline = time.monotonic() + 5
                while len(logged) < requests and time.monotonic() < deadline:
                    time.sleep(0.01)  # the log line is written once the answer's last byte is sent
                server_ms = logged[-requests:]
                assert len(server_ms) == requests, "the request log gave no duration"
                figures[name] = {"median_ms": statistics.median(server_ms), "p95_ms": _p95(server_ms),
                                 "bytes": sizes[-1]}
        access.removeHandler(durations)
    return figures


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def render(rows: dict[str, Any]) -> str:
    lines = ["## Web inspector: page server time", "",
             f"`python -m bench.ui_render`: the timeline of one stored response of {ITEMS} items (100 input",
             "messages, 100 output items with citations, a trace of 10 upstream and 10 file_search calls), and the",
             f"responses list showing {ITEMS} rows, each requested 30 times logged in; server time from the",
             f"request log line. Target: under {TARGET_MS:.0f} ms.", "",
             "| build | timeline median | timeline p95 | list (200 rows) median | list p95 | load (1 min) |",
             "|---|---|---|---|---|---|"]
    for label, row in rows.items():
        lines.append(f"| {label} | {row['timeline']['median_ms']:.1f} ms | {row['timeline']['p95_ms']:.1f} ms | "
                     f"{row['list']['median_ms']:.1f} ms | {row['list']['p95_ms']:.1f} ms | {row['load']:.2f} |")
    return "\n".join(lines) + "\n\n"


def main() -> int:
    parser = sections.parser("python -m bench.ui_render", __doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    if args.riposte_src is not None:
        sys.path.insert(0, str(args.riposte_src.resolve()))
    figures = run(args.requests)
    with open("/proc/loadavg") as load:
        figures["load"] = float(load.read().split()[0])
    known = sections.data(args.out, SECTION) or {}
    known[args.label] = figures
    sections.write(args.out, SECTION, render(known), known)
    for name in ("timeline", "list"):
        print(f"{name}: median {figures[name]['median_ms']:.1f} ms, p95 {figures[name]['p95_ms']:.1f} ms, "
              f"{figures[name]['bytes']} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
