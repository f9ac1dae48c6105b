"""`python -m bench.pairs`: interleaved A/B pairs of one streaming cell, for a change too small for
the full run's noise.

    python -m bench.pairs --concurrency 64 --delay 5 --rounds 5 \\
        before=/tmp/before/src after=src [after-wide=src:paced_read_window_ms=40]

Starts the fake upstream and one Riposte server per named tree (`name=SRC[:setting=JSON,...]`,
the settings going into its settings file), then runs the cell on each in turn, round after
round, alternating the order (ABBA...), so that a host whose speed drifts during the run (they do:
bench/RESULTS.md) weighs on both sides alike. Each run prints one line, and the end a summary:
deltas/s in the measuring window, TTFT p50 and p90 (ms), the server's CPU per delivered token
(us), failed requests, and the machine's steal and other programs' CPU (% of all cores) during the
cell. With `--windows`, also the paced-read window each second, from `/metrics`.

Get a tree to compare with `git archive REV src | tar -x -C /tmp/before`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import servers
from bench.bodies import Api
from bench.loadgen import CellRun, Mode, Scenario, Target, run_cell, warm_up
from bench.run import raise_open_files_limit
from bench.stats import percentile
from riposte.testing.server import free_port

HOST = "127.0.0.1"
_WINDOW_GAUGE = "riposte_paced_read_window_seconds{"


@dataclass(frozen=True)
class Contender:
    """One named server: a source tree (None: the installed one) and settings of its own."""

    name: str
    src: Path | None
    settings: dict[str, Any] = field(default_factory=dict)


def parse_contender(spec: str) -> Contender:
    """`name=SRC[:setting=JSON,...]`; an empty SRC runs the installed tree."""
    name, equals, rest = spec.partition("=")
    if not name or not equals:
        raise argparse.ArgumentTypeError(f"expected name=SRC[:setting=JSON,...], got {spec!r}")
    src, _, options = rest.partition(":")
    settings: dict[str, Any] = {}
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"setting {key!r}: {value!r} is not JSON") from exc
    return Contender(name, Path(src) if src else None, settings)


def round_order(contenders: list[Contender], round_number: int) -> list[Contender]:
    """Each round in the opposite order of the one before (ABBA), so neither side always goes first."""
    return contenders if round_number % 2 == 0 else list(reversed(contenders))


@dataclass(frozen=True)
class Row:
    deltas_per_s: int
    ttft_p50_ms: float | None
    ttft_p90_ms: float | None
    cpu_us_per_token: float | None
    failed: int
    steal_percent: int
    others_percent: int

    def line(self) -> str:
        return (f"{self.deltas_per_s:>7} deltas/s  TTFT {_ms(self.ttft_p50_ms)} / {_ms(self.ttft_p90_ms)} ms  "
                f"{_ms(self.cpu_us_per_token)} us/token  {self.failed} failed  "
                f"steal {self.steal_percent}%  others {self.others_percent}%")


def row_of(run: CellRun) -> Row:
    deltas = sum(sample.deltas for sample in run.samples)
    # The first token of a request sent during the ramp says how the ramp went, not the steady state.
    ttfts = [sample.ttft * 1000 for sample in run.samples if sample.ttft is not None and not sample.during_ramp]
    return Row(
        deltas_per_s=round(sum(sample.deltas_in_window for sample in run.samples) / run.window_s),
        ttft_p50_ms=percentile(ttfts, 50),
        ttft_p90_ms=percentile(ttfts, 90),
        cpu_us_per_token=run.cpu_s / deltas * 1e6 if run.cpu_s is not None and deltas else None,
        failed=sum(not sample.ok for sample in run.samples),
        steal_percent=round(run.steal_share * 100),
        others_percent=round(run.others_cpu_share * 100),
    )


def summary(rows: list[Row]) -> str:
    cpu = [row.cpu_us_per_token for row in rows if row.cpu_us_per_token is not None]
    ttft = [row.ttft_p50_ms for row in rows if row.ttft_p50_ms is not None]
    return (f"median {statistics.median(row.deltas_per_s for row in rows):.0f} deltas/s, "
            f"TTFT p50 {_ms(statistics.median(ttft) if ttft else None)} ms, "
            f"CPU {_ms(statistics.median(cpu) if cpu else None)} us/token over {len(rows)} runs, "
            f"{sum(row.failed for row in rows)} failed")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


async def _paced_windows(port: int, seen: list[int]) -> None:
    """The paced-read window in ms, once a second, until cancelled."""
    async with aiohttp.ClientSession() as session:
        while True:
            await asyncio.sleep(1)
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://{HOST}:{port}/metrics") as reply:
                    text = await reply.text()
                seen.extend(round(float(line.split()[-1]) * 1000) for line in text.splitlines()
                            if line.startswith(_WINDOW_GAUGE))


async def _measured(target: Target, scenario: Scenario, seconds: float, ramp_s: float, bystanders: tuple[int, ...],
                    windows: list[int] | None) -> CellRun:
    sampler = asyncio.create_task(_paced_windows(target.port, windows)) if windows is not None else None
    try:
        return await run_cell(target, scenario, seconds, bystanders=bystanders, ramp_s=ramp_s)
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pairs", description=__doc__.splitlines()[0])
    parser.add_argument("contenders", nargs="+", type=parse_contender, metavar="name=SRC[:setting=JSON,...]")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=5.0, help="ms between the fake upstream's tokens")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="the measuring window, after the ramp")
    parser.add_argument("--mode", choices=[mode.value for mode in Mode], default=Mode.STREAM.value)
    parser.add_argument("--store", choices=["true", "false"], default="true")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", help="default: a SQLite file per server")
    parser.add_argument("--windows", action="store_true", help="sample the paced-read window each second")
    args = parser.parse_args(argv)
    contenders: list[Contender] = args.contenders
    if len({contender.name for contender in contenders}) != len(contenders):
        parser.error("each contender needs a name of its own")
    scenario = Scenario(Mode(args.mode), args.concurrency, args.delay, args.tokens, store=args.store == "true")
    # Paced cells start their connections one by one over a response's time, as `python -m bench` does.
    ramp_s = args.delay * args.tokens / 1000
    raise_open_files_limit()
    work = Path(tempfile.mkdtemp(prefix="riposte-pairs-"))
    fake = servers.start_fake_upstream(free_port(), work)
    started: dict[str, servers.ManagedProcess] = {}
    try:
        for contender in contenders:
            database_url = args.database_url or f"sqlite+aiosqlite:///{work / (contender.name + '.db')}"
            started[contender.name] = servers.start_riposte(
                port=free_port(), upstream_url=f"http://{HOST}:{fake.port}/v1", database_url=database_url,
                workers=args.workers, work=work, tag=contender.name, src=contender.src, settings=contender.settings)
        rows: dict[str, list[Row]] = {contender.name: [] for contender in contenders}
        for round_number in range(args.rounds):
            for contender in round_order(contenders, round_number):
                server = started[contender.name]
                target = Target(contender.name, contender.name, HOST, server.port, Api.RESPONSES, "fake/", server.pid)
                if round_number == 0:
                    asyncio.run(warm_up(target, scenario))
                windows: list[int] | None = [] if args.windows else None
                run = asyncio.run(_measured(target, scenario, args.seconds, ramp_s, (fake.pid,), windows))
                row = row_of(run)
                rows[contender.name].append(row)
                print(f"{contender.name:>12}  {row.line()}" + (f"  windows {windows} ms" if windows else ""),
                      flush=True)
        for name, measured in rows.items():
            print(f"{name:>12}  {summary(measured)}")
        return 0
    finally:
        for server in started.values():
            server.stop()
        fake.stop()


if __name__ == "__main__":
    raise SystemExit(main())
