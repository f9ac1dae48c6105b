"""`python -m bench`: start the fake upstream, run every group of the matrix, write the results."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import resource
import secrets
import shlex
import sys
import time
import timeit
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg

from bench import matrix, peers, procstat, report, sections, servers
from bench.bodies import Api
from bench.loadgen import CellRun, Mode, Scenario, Target, run_cell, warm_up
from bench.matrix import Group
from bench.servers import ManagedProcess, ServerFailed
from bench.stats import summarize
from bench.verdicts import all_verdicts
from riposte.testing.server import free_port

BENCH = Path(__file__).resolve().parent
HOST = "127.0.0.1"
POSTGRES_ADMIN_URL = os.environ.get("RIPOSTE_BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SETTLED_CPU_SHARE = 0.05
NOISY_SHARE = 0.2
LOG_PATTERNS = ("database is locked", "Traceback", "ERROR")
VERSIONED_PACKAGES = ("riposte", "uvicorn", "starlette", "fastapi", "openai", "httpx", "sqlalchemy", "aiosqlite",
                      "asyncpg", "orjson", "pydantic", "uvloop", "httptools")


@dataclass
class ServerRecord:
    key: str
    label: str
    command: str = ""
    log: str = ""
    log_counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    # CPU the server's processes use while no request is in flight (background workers, pollers).
    idle_cpu_share: float | None = None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Riposte vs OGX vs direct, one run.")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring window per cell (default 3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few cells per server")
    parser.add_argument("--only", action="append", choices=["direct", "riposte", "ogx"],
                        help="run only these servers (repeatable)")
    parser.add_argument("--group", action="append", help="run only these groups, e.g. riposte-sqlite (repeatable)")
    parser.add_argument("--mode", action="append", choices=[m.value for m in Mode], help="only these modes")
    parser.add_argument("--concurrency", action="append", type=int, help="only these concurrencies")
    parser.add_argument("--delay", action="append", type=float, help="only these delays in ms")
    parser.add_argument("--no-ogx", action="store_true", help="leave the peer out")
    parser.add_argument("--no-postgres", action="store_true", help="leave the PostgreSQL groups out")
    parser.add_argument("--riposte-src", type=Path, help="run Riposte from this source tree (before/after)")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--json", type=Path, default=BENCH / "results.json", help="raw results")
    parser.add_argument("--before", type=Path, default=BENCH / "before.json",
                        help="raw results of a run before the hot-path work, for the before/after table")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: write --out again from the raw results in --json (and --before)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        _write_report(args, json.loads(args.json.read_text()))
        return 0
    started = time.time()
    raise_open_files_limit()
    work = BENCH / ".work" / time.strftime("run-%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    plan = _plan(args)
    fake = servers.start_fake_upstream(free_port(), work)
    cells: list[dict[str, Any]] = []
    records: list[ServerRecord] = []
    quiet = _QuietWaiter()
    try:
        for group in plan:
            records.append(_run_group(group, fake, work, args, cells, quiet))
    finally:
        fake.stop()
    result = {
        "meta": _meta(args, argv, started, fake),
        "cells": cells,
        "servers": [asdict(r) for r in records],
    }
    args.json.write_text(json.dumps(result, indent=1))
    _write_report(args, result)
    _say(f"wrote {args.out} and {args.json} in {time.time() - started:.0f} s")
    marks = {True: "met", False: "NOT met", None: "not judged"}
    before = _before(args)
    for verdict in all_verdicts(cells, [asdict(r) for r in records], before["cells"] if before else None):
        _say(f"target {verdict.number}: {marks[verdict.met]:10} {verdict.title}: {verdict.detail}")
    return 0


def raise_open_files_limit() -> None:
    """The c=1000 cell opens 1000 connections to the server and the server 1000 to the fake
    upstream; the servers, started from here, inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _before(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.before.exists() and args.before != args.json:
        before: dict[str, Any] = json.loads(args.before.read_text())
        return before
    return None


def _write_report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    args.out.write_text(report.render(result, _before(args)) + sections.kept(args.out))


def _plan(args: argparse.Namespace) -> list[Group]:
    plan = matrix.groups(with_postgres=not args.no_postgres, with_ogx=not args.no_ogx)
    if args.only:
        plan = [g for g in plan if g.server in args.only]
    if args.group:
        plan = [g for g in plan if g.key in args.group]
    plan = matrix.quick(plan) if args.quick else plan
    return [replace(g, scenarios=tuple(s for s in g.scenarios if _selected(s, args))) for g in plan]


def _selected(scenario: Scenario, args: argparse.Namespace) -> bool:
    return ((not args.mode or scenario.mode.value in args.mode)
            and (not args.concurrency or scenario.concurrency in args.concurrency)
            and (not args.delay or scenario.delay_ms in args.delay))


def _run_group(group: Group, fake: ManagedProcess, work: Path, args: argparse.Namespace,
               cells: list[dict[str, Any]], quiet: _QuietWaiter) -> ServerRecord:
    record = ServerRecord(group.key, group.label)
    upstream_url = f"http://{HOST}:{fake.port}/v1"
    database: str | None = None
    server: ManagedProcess | None = None
    try:
        if group.server == "direct":
            target = Target(group.key, group.label, HOST, fake.port, Api.CHAT, "", fake.pid)
            record.command = fake.command
        else:
            if group.server == "riposte":
                database = _create_postgres_database() if group.store == "postgres" else None
                server = _start_riposte(group, upstream_url, work, args.riposte_src, database)
                prefix = "fake/"
            else:
                server = _start_ogx(upstream_url, work)
                prefix = "openai/"
            record.command, record.log = server.command, str(server.log_path)
            record.idle_cpu_share = _idle_cpu_share(server.pid)
            target = Target(group.key, group.label, HOST, server.port, Api.RESPONSES, prefix, server.pid)
        bystanders = () if group.server == "direct" else (fake.pid,)
        for scenario in group.scenarios:
            cells.append(_run_scenario(group, target, scenario, args.seconds, bystanders, quiet))
    except (ServerFailed, peers.PeerUnavailable, OSError, asyncpg.PostgresError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"
        _say(f"{group.label}: could not run: {record.error}")
    finally:
        if server is not None:
            server.stop()
            log = server.log_text()
            record.log_counts = {pattern: log.count(pattern) for pattern in LOG_PATTERNS}
        if database is not None:
            _drop_postgres_database(database)
    return record


def _idle_cpu_share(pid: int, seconds: float = 2.0, settle_timeout: float = 90.0) -> float:
    """Waits for start-up work to end (OGX spends seconds of CPU in worker processes after it
    first answers), so that it is not charged to the first cell, then measures the idle rate."""
    deadline = time.monotonic() + settle_timeout
    while _cpu_rate(pid, 1.0) > SETTLED_CPU_SHARE and time.monotonic() < deadline:
        pass
    return _cpu_rate(pid, seconds)


def _cpu_rate(pid: int, seconds: float) -> float:
    before = procstat.usage(pid).cpu_s
    time.sleep(seconds)
    return (procstat.usage(pid).cpu_s - before) / seconds


def _start_riposte(group: Group, upstream_url: str, work: Path, src: Path | None,
                   postgres_name: str | None) -> ManagedProcess:
    data = work / f"riposte-{group.key}"
    if postgres_name is not None:
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        url = f"{base}/{postgres_name}"
    else:
        url = f"sqlite+aiosqlite:///{data / 'riposte.db'}"
    return servers.start_riposte(port=free_port(), upstream_url=upstream_url, database_url=url,
                                 workers=group.workers, work=work, tag=group.key, src=src)


def _start_ogx(upstream_url: str, work: Path) -> ManagedProcess:
    ogx = peers.ensure_ogx(work / "ogx-install.log")
    return servers.start_ogx(ogx_bin=ogx, config=peers.write_ogx_config(work), port=free_port(),
                             upstream_url=upstream_url, work=work, tiktoken_dir=peers.tiktoken_cache(work))


def _run_scenario(group: Group, target: Target, scenario: Scenario, seconds: float,
                  bystanders: tuple[int, ...], quiet: _QuietWaiter) -> dict[str, Any]:
    cell = _measure(group, target, scenario, seconds, bystanders, quiet)
    if _noise(cell) > NOISY_SHARE:
        # Other programs or other machines took a large share of the CPU: measure once more and
        # keep the quieter of the two (the table shows the noise of the one kept).
        _say(f"{group.label}: {scenario.mode.value} c={scenario.concurrency} was noisy ({_noise(cell):.0%}), again")
        cell = min(cell, _measure(group, target, scenario, seconds, bystanders, quiet), key=_noise)
    _say(f"{group.label:34} {scenario.mode.value:15} c={scenario.concurrency:<3} d={scenario.delay_ms:g}ms "
         f"store={scenario.store!s:5} ok={cell['ok']} failed={cell['failed']} "
         f"deltas/s={cell['deltas_per_s']:.0f} ttft50={_ms(cell['ttft_ms']['p50'])} "
         f"cpu/token={_us(cell['cpu_us_per_token'])} others={cell['others_cpu_share']:.0%} "
         f"steal={cell['steal_share']:.0%}")
    return cell


def _measure(group: Group, target: Target, scenario: Scenario, seconds: float, bystanders: tuple[int, ...],
             quiet: _QuietWaiter) -> dict[str, Any]:
    quiet.wait()
    asyncio.run(warm_up(target, scenario))
    # Paced cells: the connections start one by one over one response's time, as independent users
    # arrive, and the window opens after that, holding two whole responses even when tokens are slow
    # (20 ms x 256 = 5 s). Unpaced cells start every connection at once: they measure throughput.
    response_s = scenario.delay_ms * scenario.tokens / 1000
    window = max(seconds, 2 * response_s)
    return _cell_record(group, scenario, asyncio.run(run_cell(target, scenario, window, bystanders, ramp_s=response_s)))


def _noise(cell: dict[str, Any]) -> float:
    return float(cell["others_cpu_share"] + cell["steal_share"])


class _QuietWaiter:
    """Waits, before a cell, for other programs on this shared machine to stop using the CPU.

    Bounded per cell and per run, so a machine that never quiets down still gets measured (and the
    cell's own noise figures say so)."""

    def __init__(self, per_cell_s: float = 20.0, per_run_s: float = 120.0, threshold: float = 0.15) -> None:
        self.per_cell_s, self.budget_s, self.threshold = per_cell_s, per_run_s, threshold

    def wait(self) -> None:
        started = time.monotonic()
        while self.budget_s > 0 and time.monotonic() - started < self.per_cell_s:
            before = procstat.MachineTimes.now()
            time.sleep(0.5)
            busy = (procstat.MachineTimes.now().busy_s - before.busy_s) / (0.5 * (os.cpu_count() or 1))
            if busy < self.threshold:
                break
        self.budget_s -= time.monotonic() - started


def _cell_record(group: Group, scenario: Scenario, run: CellRun) -> dict[str, Any]:
    summary = summarize(run.samples, run.window_s, run.span_s)
    return {
        "group": group.key, "label": group.label, "server": group.server, "store": group.store,
        "workers": group.workers, "mode": scenario.mode.value, "concurrency": scenario.concurrency,
        "delay_ms": scenario.delay_ms, "tokens": scenario.tokens, "store_flag": scenario.store,
        **asdict(summary),
        "cpu_us_per_token": run.cpu_s / summary.deltas * 1e6 if run.cpu_s is not None and summary.deltas else None,
        "rss_start_mb": run.rss_start / 2**20 if run.rss_start is not None else None,
        "rss_peak_mb": run.rss_peak / 2**20 if run.rss_peak is not None else None,
        "window_s": run.window_s, "ramp_s": run.ramp_s, "span_s": run.span_s,
        "others_cpu_share": run.others_cpu_share, "steal_share": run.steal_share,
    }


def _create_postgres_database() -> str:
    name = f"riposte_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return name


def _drop_postgres_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(sql: str) -> str:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(sql)
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def _meta(args: argparse.Namespace, argv: list[str] | None, started: float, fake: ManagedProcess) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "duration_s": time.time() - started,
        "command": " ".join(["python -m bench", shlex.join(argv if argv is not None else sys.argv[1:])]).strip(),
        "seconds_per_cell": args.seconds,
        "riposte_src": str(args.riposte_src) if args.riposte_src else None,
        "fake_upstream": fake.command,
        "machine": _machine(),
        "versions": _versions(args),
    }


def _machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    memory = next((line.split(":", 1)[1].strip() for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "")
    return {"cores": os.cpu_count(), "cpu": model, "memory": memory, "kernel": platform.release(),
            "python": sys.version.split()[0], "sum_range_1000_us": interpreter_speed_us()}


def interpreter_speed_us() -> float:
    """Microseconds for `sum(range(1000))`, the best of several rounds: how fast this host runs
    plain Python. Hosts that look alike differ by three times (bench/RESULTS.md), and every
    figure here scales with this one, so runs are compared by it, not by the CPU's name."""
    rounds = timeit.repeat("sum(range(1000))", number=2000, repeat=7)
    return min(rounds) / 2000 * 1e6


def _versions(args: argparse.Namespace) -> dict[str, str]:
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    if not args.no_postgres:
        try:
            versions["postgresql"] = asyncio.run(_admin("SELECT 1"))
        except (OSError, asyncpg.PostgresError) as exc:
            versions["postgresql"] = f"unavailable ({exc})"
    if not args.no_ogx and (peers.OGX_VENV / "bin" / "python").exists():
        versions["ogx"] = peers.ogx_version()
    return versions


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}ms"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}us"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
