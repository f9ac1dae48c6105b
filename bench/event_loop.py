"""Event-loop figure: the latency of a small request while a 25 MiB input is being handled.

    python -m bench.event_loop [--seconds 30] [--input-mib 25] [--riposte-src DIR] [--label L]

Runs the real server (`riposte serve`, SQLite, one worker) against the bench's fake upstream.
A neighbour sends 25 MiB inputs back to back to a model whose backend reports no usage, so the
server counts the tokens itself; meanwhile a light client sends a one-line request every 50 ms and
times it. The small requests' p50/p99/max, with and without the neighbour, go into a section of
bench/RESULTS.md (kept when `python -m bench` rewrites the rest); `--riposte-src` measures another
source tree (the code from before the change) into the same table under `--label`.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import sections, servers
from bench.stats import percentile
from riposte.testing.server import free_port

BENCH = Path(__file__).resolve().parent
SECTION = "event-loop"
SMALL_EVERY_S = 0.05
SMALL = {"model": "fake/bench-t16-d0", "input": "ping"}
# The big input (millions of tokens) must reach the upstream as before context windows existed,
# not stop at the window check: a window that takes it, for trees that know windows.
HUGE_WINDOW: dict[str, Any] = {"context": {"default_window": 1_000_000_000}}


def small_latencies(base_url: str, seconds: float, stop: threading.Event | None = None) -> list[float]:
    """One small request every 50 ms for `seconds`, each timed from send to last byte, in ms."""
    timings: list[float] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base_url, timeout=120) as http:
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            started = time.perf_counter()
            http.post("/responses", json=SMALL).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
            time.sleep(max(0.0, SMALL_EVERY_S - (time.perf_counter() - started)))
    return timings


def big_neighbour(base_url: str, input_mib: int, stop: threading.Event, done: list[float]) -> None:
    """25 MiB inputs, one after another, until told to stop; each one's duration in seconds."""
    words = "the lighthouse keeper counted ships until dawn "
    huge = (words * (input_mib * 1024 * 1024 // len(words) + 1))[:input_mib * 1024 * 1024]
    body = {"model": "fake/bench-t16-d0-nousage", "input": huge, "store": True}
    with httpx.Client(base_url=base_url, timeout=600) as http:
        while not stop.is_set():
            started = time.perf_counter()
            http.post("/responses", json=body).raise_for_status()
            done.append(time.perf_counter() - started)


def summary(timings: list[float]) -> list[float]:
    """p50, p99, max (ms) and the count."""
    if not timings:
        return [0.0, 0.0, 0.0, 0]
    return [round(percentile(timings, 50) or 0.0, 2), round(percentile(timings, 99) or 0.0, 2),
            round(max(timings), 2), len(timings)]


def measure(base_url: str, seconds: float, input_mib: int) -> dict[str, list[float]]:
    quiet = small_latencies(base_url, min(seconds, 10.0))
    stop = threading.Event()
    big_durations: list[float] = []
    neighbour = threading.Thread(target=big_neighbour, args=(base_url, input_mib, stop, big_durations))
    neighbour.start()
    try:
        loaded = small_latencies(base_url, seconds)
    finally:
        stop.set()
        neighbour.join()
    mean_big = round(sum(big_durations) / len(big_durations), 2) if big_durations else 0.0
    return {"quiet": summary(quiet), "loaded": summary(loaded), "big": [len(big_durations), mean_big]}


def run(seconds: float, input_mib: int, src: Path | None) -> dict[str, list[float]]:
    work = BENCH / ".work" / time.strftime("event-loop-%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    upstream_port = free_port()
    upstream = servers.start_fake_upstream(upstream_port, work)
    try:
        riposte = servers.start_riposte(port=free_port(), upstream_url=f"http://127.0.0.1:{upstream_port}/v1",
                                        database_url=f"sqlite+aiosqlite:///{work / 'riposte.db'}", workers=1,
                                        work=work, tag="event-loop", src=src, settings=_window_settings(src))
        try:
            return measure(f"http://127.0.0.1:{riposte.port}/v1", seconds, input_mib)
        finally:
            riposte.stop()
    finally:
        upstream.stop()


def _window_settings(src: Path | None) -> dict[str, Any]:
    tree = src if src is not None else BENCH.parent / "src"
    return HUGE_WINDOW if (tree / "riposte" / "engine" / "context_windows.py").exists() else {}


def _cell(figures: list[float]) -> str:
    return f"{figures[0]:,.1f} / {figures[1]:,.1f} / {figures[2]:,.1f}"


def render(rows: dict[str, dict[str, list[float]]], input_mib: int) -> str:
    lines = [
        "## Event loop: a small request next to a large input",
        "",
        f"Generated by `python -m bench.event_loop` on {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}. "
        f"One client sends a one-word request every 50 ms while a neighbour sends {input_mib} MiB inputs back to "
        "back to a backend that reports no usage (so the server counts the tokens). One worker, SQLite.",
        "",
        "| build | small alone p50 / p99 / max ms | small next to the large input p50 / p99 / max ms | small requests "
        "| large inputs done (mean s) |",
        "|---|---|---|---|---|",
    ]
    for label, figures in rows.items():
        done, mean = figures["big"]
        lines.append(f"| {label} | {_cell(figures['quiet'])} | {_cell(figures['loaded'])} "
                     f"| {int(figures['loaded'][3])} | {int(done)} ({mean:,.1f}) |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = sections.parser("python -m bench.event_loop", __doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the neighbour keeps sending")
    parser.add_argument("--input-mib", type=int, default=25)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = run(args.seconds, args.input_mib, args.riposte_src)
    known = sections.data(args.out, SECTION) or {}
    known[args.label] = figures
    sections.write(args.out, SECTION, render(known, args.input_mib), known)
    print(render(known, args.input_mib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
