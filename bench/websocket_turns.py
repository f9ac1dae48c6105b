"""A chain of turns over HTTP (SSE) and over WebSocket mode: time per turn, as a client sees it.

    python -m bench.websocket_turns [--turns 50] [--input-bytes 2000] [--riposte-src DIR] [--label L]

Runs the real server (`riposte serve`, SQLite) against the bench's fake upstream (256-token
answers, no delay) and drives one `previous_response_id` chain per transport, one turn after
another, each sending only its new input: POSTs with `stream: true` on one keep-alive connection;
`response.create` events on one WebSocket with stored responses; and on one WebSocket with
`store: false`, continued from the connection's memory. A turn's time runs from sending the
request to reading its terminal event; the server's CPU time per turn (from /proc) does not
depend on what else the machine runs. Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from bench import procstat, sections, servers
from riposte.testing.server import free_port

BENCH = Path(__file__).resolve().parent
SECTION = "websocket-turns"
MODEL = "fake/bench-t256-d0"
TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")

Chain = Callable[[str, int, str], list[float]]


def over_http(base_url: str, turns: int, filler: str) -> list[float]:
    times: list[float] = []
    previous: str | None = None
    with httpx.Client(base_url=f"{base_url}/v1", timeout=60) as http:
        for turn in range(turns):
            body = {"model": MODEL, "input": f"turn {turn}: {filler}", "previous_response_id": previous,
                    "stream": True}
            started = time.perf_counter()
            with http.stream("POST", "/responses", json=body) as reply:
                reply.raise_for_status()
                for line in reply.iter_lines():
                    if line.startswith("data: {"):
                        event = json.loads(line[6:])
                        if event["type"] == "response.created":
                            previous = event["response"]["id"]
                        if event["type"] in TERMINAL:
                            assert event["type"] == "response.completed", event
            times.append(time.perf_counter() - started)
    return times


def over_websocket(store: bool) -> Chain:
    def chain(base_url: str, turns: int, filler: str) -> list[float]:
        times: list[float] = []
        previous: str | None = None
        with connect(base_url.replace("http://", "ws://") + "/v1/responses", max_size=None) as socket:
            for turn in range(turns):
                started = time.perf_counter()
                socket.send(json.dumps({"type": "response.create", "model": MODEL, "store": store,
                                        "input": f"turn {turn}: {filler}", "previous_response_id": previous}))
                while True:
                    event = json.loads(socket.recv(timeout=60))
                    if event["type"] == "response.created":
                        previous = event["response"]["id"]
                    if event["type"] in TERMINAL:
                        assert event["type"] == "response.completed", event
                        break
                times.append(time.perf_counter() - started)
        return times

    return chain


CHAINS: dict[str, Chain] = {
    "HTTP POST, SSE, stored": over_http,
    "WebSocket, stored": over_websocket(store=True),
    "WebSocket, store: false (connection memory)": over_websocket(store=False),
}


def run(turns: int, input_bytes: int, src: Path | None) -> dict[str, dict[str, Any]]:
    work = BENCH / ".work" / time.strftime("websocket-%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    upstream_port = free_port()
    upstream = servers.start_fake_upstream(upstream_port, work)
    filler = ("lorem ipsum dolor sit amet " * (input_bytes // 27 + 1))[:input_bytes]
    try:
        riposte = servers.start_riposte(port=free_port(), upstream_url=f"http://127.0.0.1:{upstream_port}/v1",
                                        database_url=f"sqlite+aiosqlite:///{work / 'riposte.db'}", workers=1,
                                        work=work, tag="websocket", src=src)
        try:
            base_url = f"http://127.0.0.1:{riposte.port}"
            for chain in CHAINS.values():  # warm the server and the upstream connection pool
                chain(base_url, 3, filler)
            results: dict[str, dict[str, Any]] = {}
            for name, chain in CHAINS.items():
                cpu_before = procstat.usage(riposte.pid).cpu_s
                times = chain(base_url, turns, filler)
                cpu = procstat.usage(riposte.pid).cpu_s - cpu_before
                results[name] = {"times": times, "cpu_ms_per_turn": cpu * 1000 / turns}
            return results
        finally:
            riposte.stop()
    finally:
        upstream.stop()


def render(results: dict[str, dict[str, dict[str, Any]]], turns: int, input_bytes: int) -> str:
    lines = [
        "## WebSocket mode: a chain of turns over HTTP and over one WebSocket",
        "",
        f"Generated by `python -m bench.websocket_turns` on {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}. "
        f"One `previous_response_id` chain of {turns} turns per transport, one turn at a time, each sending "
        f"{input_bytes:,} bytes of new input and getting a 256-token answer from the fake upstream (no delay); "
        "one server worker, SQLite. Time per turn: from sending the request to reading its terminal event; "
        "server CPU: the server process's CPU time over the chain, per turn (the machine's other load does not "
        "count in it, while it does in the times).",
        "",
        "| build | transport | turns | p50 ms | p90 ms | max ms | total s | server CPU ms/turn |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, rows in results.items():
        for transport, row in rows.items():
            times = row["times"]
            ordered = sorted(times)
            p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
            lines.append(f"| {label} | {transport} | {len(times)} | {statistics.median(times) * 1000:.1f} "
                         f"| {p90 * 1000:.1f} | {ordered[-1] * 1000:.1f} | {sum(times):.2f} "
                         f"| {row['cpu_ms_per_turn']:.1f} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = sections.parser("python -m bench.websocket_turns", (__doc__ or "").split("\n")[0])
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--input-bytes", type=int, default=2_000)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = sections.data(args.out, SECTION) or {}
    results[args.label] = run(args.turns, args.input_bytes, args.riposte_src)
    markdown = render(results, args.turns, args.input_bytes)
    sections.write(args.out, SECTION, markdown, results)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
