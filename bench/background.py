"""Background responses: throughput with one process and with two, and the latency of a resume.

    python -m bench.background [--responses 200] [--riposte-src DIR] [--label L] [--no-postgres]

Runs the real server (`riposte serve`) against the bench's fake upstream (256-token answers, no
delay). Throughput: N background responses created at once (16 client threads), polled until all
have ended, on one process and on two (SQLite: `--workers 2`; PostgreSQL: two replicas of one
database). Resume: the time from `GET /responses/{id}?stream=true&starting_after=0` to its first
event for a finished response (the stored replay), and, while a response streams (5 ms a token),
how far a reader on another process lags one on the process that runs it, event by event
(PostgreSQL: LISTEN/NOTIFY; SQLite: polling every `resume_poll_seconds`). Writes its section of
bench/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench import sections, servers
from riposte.testing.server import free_port

BENCH = Path(__file__).resolve().parent
SECTION = "background"
FAST_MODEL = "fake/bench-t256-d0"
PACED_MODEL = "fake/bench-t200-d5"
POSTGRES_ADMIN = os.environ.get("RIPOSTE_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def start(work: Path, tag: str, upstream_url: str, database_url: str, *, workers: int = 8, processes: int = 1,
          src: Path | None = None) -> servers.ManagedProcess:
    data_dir = work / f"riposte-{tag}"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "riposte.yaml"
    config.write_text(yaml.safe_dump({"providers": [{"name": "fake", "base_url": upstream_url, "api_key": "bench"}],
                                      "log_level": "warning", "background_workers": workers,
                                      "background_poll_seconds": 0.1}))
    args = [sys.executable, "-m", "riposte", "serve", "--config", str(config), "--port", str(free_port()),
            "--workers", str(processes), "--data-dir", str(data_dir), "--database-url", database_url]
    port = int(args[args.index("--port") + 1])
    env = {"PYTHONPATH": str(src.resolve())} if src is not None else {}
    return servers.start(f"riposte ({tag})", args, port=port, log_path=data_dir / "server.log", ready_path="/health",
                         ready_timeout=60, env=env)


def throughput(bases: list[str], count: int) -> float:
    """Responses per second: `count` background responses spread over `bases`, until all ended."""
    started = time.perf_counter()

    def create(number: int) -> tuple[str, str]:
        base = bases[number % len(bases)]
        reply = httpx.post(f"{base}/v1/responses", timeout=60,
                           json={"model": FAST_MODEL, "input": f"job {number}", "background": True})
        reply.raise_for_status()
        return base, reply.json()["id"]

    with ThreadPoolExecutor(16) as pool:
        created = list(pool.map(create, range(count)))
    # One response at a time, in creation order (roughly the order they end in), so that polling
    # costs the servers little next to the work measured.
    with httpx.Client(timeout=60) as http:
        for base, response_id in created:
            while http.get(f"{base}/v1/responses/{response_id}").json()["status"] in ("queued", "in_progress"):
                time.sleep(0.02)
    return count / (time.perf_counter() - started)


def first_event_ms(base: str, response_id: str, tries: int = 30) -> list[float]:
    times: list[float] = []
    with httpx.Client(timeout=60) as http:
        for _ in range(tries):
            started = time.perf_counter()
            with http.stream("GET", f"{base}/v1/responses/{response_id}",
                             params={"stream": "true", "starting_after": 0}) as reply:
                for line in reply.iter_lines():
                    if line.startswith("data: {"):
                        times.append((time.perf_counter() - started) * 1000)
                        break
    return times


def follow_lag_ms(owner: str, other: str) -> list[float]:
    """Per event, how much later a reader on `other` got it than a reader on `owner` (which runs it)."""
    reply = httpx.post(f"{owner}/v1/responses", timeout=60,
                       json={"model": PACED_MODEL, "input": "paced", "background": True})
    response_id = reply.json()["id"]
    arrivals: dict[str, dict[int, float]] = {owner: {}, other: {}}

    def read(base: str) -> None:
        with httpx.Client(timeout=60) as http, http.stream(
                "GET", f"{base}/v1/responses/{response_id}", params={"stream": "true"}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: {"):
                    arrivals[base][json.loads(line[6:])["sequence_number"]] = time.perf_counter()

    readers = [threading.Thread(target=read, args=(base,)) for base in (owner, other)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    return [(arrivals[other][n] - arrivals[owner][n]) * 1000 for n in arrivals[owner] if n in arrivals[other]]


def run(count: int, src: Path | None, postgres: bool) -> dict[str, Any]:
    work = BENCH / ".work" / time.strftime("background-%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    upstream_port = free_port()
    upstream = servers.start_fake_upstream(upstream_port, work)
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    results: dict[str, Any] = {"throughput": {}, "resume": {}}
    try:
        for processes in (1, 2):
            url = f"sqlite+aiosqlite:///{work / f'sqlite-{processes}.db'}"
            server = start(work, f"sqlite-{processes}", upstream_url, url, processes=processes, src=src)
            try:
                base = f"http://127.0.0.1:{server.port}"
                throughput([base], 20)  # warm-up
                results["throughput"][f"SQLite, {processes} process(es)"] = throughput([base], count)
            finally:
                server.stop()
        url = f"sqlite+aiosqlite:///{work / 'sqlite-follow.db'}"
        owner = start(work, "sqlite-owner", upstream_url, url, src=src)
        other = start(work, "sqlite-other", upstream_url, url, workers=0, src=src)
        try:
            bases = [f"http://127.0.0.1:{p.port}" for p in (owner, other)]
            results["resume"]["SQLite, 2 processes"] = _resume(bases)
        finally:
            other.stop()
            owner.stop()
        if postgres:
            results["throughput"].update(_postgres_throughput(work, upstream_url, count, src))
            url = _postgres_database()
            owner = start(work, "pg-owner", upstream_url, url, src=src)
            other = start(work, "pg-other", upstream_url, url, workers=0, src=src)
            try:
                bases = [f"http://127.0.0.1:{p.port}" for p in (owner, other)]
                results["resume"]["PostgreSQL, 2 replicas"] = _resume(bases)
            finally:
                other.stop()
                owner.stop()
    finally:
        upstream.stop()
    return results


def _resume(bases: list[str]) -> dict[str, list[float]]:
    owner, other = bases
    done = httpx.post(f"{owner}/v1/responses", timeout=60,
                      json={"model": FAST_MODEL, "input": "replayed", "background": True}).json()["id"]
    while httpx.get(f"{owner}/v1/responses/{done}", timeout=60).json()["status"] in ("queued", "in_progress"):
        time.sleep(0.05)
    return {"first_event_ms": first_event_ms(other, done), "lag_ms": follow_lag_ms(owner, other)}


def _postgres_database() -> str:
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/riposte_bench_bg_{secrets.token_hex(4)}"  # riposte creates it at start


def _postgres_throughput(work: Path, upstream_url: str, count: int, src: Path | None) -> dict[str, float]:
    found: dict[str, float] = {}
    for replicas in (1, 2):
        url = _postgres_database()
        started = [start(work, f"pg-{replicas}-{n}", upstream_url, url, src=src) for n in range(replicas)]
        try:
            bases = [f"http://127.0.0.1:{p.port}" for p in started]
            throughput(bases, 20)
            found[f"PostgreSQL, {replicas} replica(s)"] = throughput(bases, count)
        finally:
            for process in started:
                process.stop()
    return found


def render(results: dict[str, dict[str, Any]], count: int) -> str:
    lines = [
        "## Background responses: one process against two, and resume latency",
        "",
        f"Generated by `python -m bench.background` on {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}. "
        f"Throughput: {count} background responses (256 tokens each from the fake upstream, no delay) created at "
        "once, polled until all ended; 8 workers a process; two processes are `--workers 2` on SQLite and two "
        "replicas on PostgreSQL. This machine has 2 cores shared with other work, so two processes can at best "
        "double a CPU-bound rate. Resume: time to the first event of `GET ?stream=true&starting_after=0` on a "
        "finished response (stored replay, from the process that did not run it); lag: per event of a response "
        "streaming at 5 ms a token, how much later a reader on the other process got it than a reader on the "
        "process running it.",
        "",
        "| build | setup | responses/s |",
        "|---|---|---:|",
    ]
    for label, figures in results.items():
        for setup, rate in figures["throughput"].items():
            lines.append(f"| {label} | {setup} | {rate:.1f} |")
    lines += ["", "| build | setup | first replayed event p50 ms | p90 ms | cross-process lag p50 ms | p90 ms |",
              "|---|---|---:|---:|---:|---:|"]
    for label, figures in results.items():
        for setup, row in figures["resume"].items():
            first, lag = sorted(row["first_event_ms"]), sorted(row["lag_ms"])
            lines.append(f"| {label} | {setup} | {statistics.median(first):.1f} | "
                         f"{first[int(len(first) * 0.9)]:.1f} | {statistics.median(lag):.1f} | "
                         f"{lag[int(len(lag) * 0.9)]:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = sections.parser("python -m bench.background", (__doc__ or "").split("\n")[0])
    parser.add_argument("--responses", type=int, default=200)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    results = sections.data(args.out, SECTION) or {}
    results[args.label] = run(args.responses, args.riposte_src, not args.no_postgres)
    markdown = render(results, args.responses)
    sections.write(args.out, SECTION, markdown, results)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
