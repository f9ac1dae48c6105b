"""`python -m bench.profile`: where the server's CPU goes in one cell, per delivered token.

Starts the fake upstream and one Riposte worker (SQLite), loads it with one streaming cell while
py-spy samples the worker (`--gil`: only samples holding the GIL, i.e. Python doing work), and
sorts every sample into a stage of a token's trip by the innermost frame that names one. The
shares times the cell's measured CPU per token give microseconds per token per stage.

    python -m bench.profile --concurrency 64 --delay 5 [--riposte-src /path/to/before/src]

`--burst-first 256` loads the server with 0 ms streams at that concurrency before the profiled
cell, as `python -m bench` serves its 0 ms cells before the paced ones: a paced token cost more in
a server that had served them (bench/RESULTS.md, "Issue 16, twenty-second pass").

py-spy comes with the dev extra; it needs ptrace rights over its child (it is run as the parent
of nothing: it attaches by pid, which works for our own child processes under the default Yama
setting only when run as root or with `kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench import procstat, servers
from bench.bodies import Api
from bench.loadgen import Mode, Scenario, Target, run_cell, warm_up
from riposte.testing.server import free_port

HOST = "127.0.0.1"

# (stage, substrings of "function (file" frames): the first stage whose marker appears in a
# sample's stack, searched from the innermost frame outwards, takes the sample.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("store (SQLite: the turn's two rows)", ("aiosqlite", "sqlalchemy", "store/", "sqlite3")),
    ("upstream read + SSE split", ("aiohttp", "sse_decoder.py", "readany", "chat_stream.py")),
    ("chunk decode (orjson.loads)", ("parse_chunk",)),
    ("state machine", ("stream_state.py", "citation_filter.py")),
    ("JSON encode + SSE framing", ("encode_event", "encode_data", "sse.py", "event_bytes")),
    ("socket write (ASGI send chain, transport)", ("httptools_impl.py", "h11_impl.py", "_send (starlette",
                                                   "sender (starlette", "send_with_request_id", "tracking_send",
                                                   "_send_body")),
    ("turn + generators", ("turn.py", "turn_observer.py", "batched_stream.py", "responses.py")),
    ("request handling (HTTP parse, routing, middleware, validation)",
     ("starlette", "fastapi", "middleware", "pydantic", "api/", "engine/")),
    ("event loop (wake-ups, callbacks, selector)", ("uvloop", "asyncio", "base_events", "events.py")),
)
OTHER = "other"
_MAIN_THREAD = "main thread (event loop)"
_OTHER_THREADS = "other threads (database driver, ...)"


def stage_of(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for stage, markers in STAGES:
            if any(marker in frame for marker in markers):
                return stage
    return OTHER


def _stacks(raw: str) -> Iterator[tuple[str, int]]:
    """Each stack and its samples, from py-spy's raw (collapsed) output: `frame;frame;... count` lines."""
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack, int(count)


def breakdown(raw: str) -> Counter[str]:
    """Samples per stage."""
    counts: Counter[str] = Counter()
    for stack, samples in _stacks(raw):
        counts[stage_of(stack)] += samples
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--store", choices=["true", "false"], default="true")
    parser.add_argument("--tokens", type=int, default=256,
                        help="tokens per response; a few make the per-request fixed cost dominate")
    parser.add_argument("--top", type=int, default=0, help="also list the N functions with the most own samples")
    parser.add_argument("--riposte-src", type=Path)
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw output here")
    parser.add_argument("--burst-first", type=int, default=0, metavar="CONCURRENCY",
                        help="first load the server with 0 ms streams at this concurrency for --seconds")
    args = parser.parse_args(argv)
    # Also next to this interpreter: run as .venv/bin/python, the venv's bin is often not on PATH.
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if py_spy is None:
        print("py-spy is not installed (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="riposte-profile-"))
    fake = servers.start_fake_upstream(free_port(), work)
    try:
        server = servers.start_riposte(port=free_port(), upstream_url=f"http://{HOST}:{fake.port}/v1",
                                       database_url=f"sqlite+aiosqlite:///{work / 'riposte.db'}", workers=1,
                                       work=work, tag="profile", src=args.riposte_src)
        try:
            return _profile(py_spy, server, args, work)
        finally:
            server.stop()
    finally:
        fake.stop()


def _profile(py_spy: str, server: servers.ManagedProcess, args: argparse.Namespace, work: Path) -> int:
    concurrency: int = args.concurrency
    delay: float = args.delay
    seconds: float = args.seconds
    store = args.store == "true"
    raw_path: Path = args.raw or work / "profile.raw"
    target = Target("riposte", "Riposte", HOST, server.port, Api.RESPONSES, "fake/", server.pid)
    scenario = Scenario(Mode.STREAM, concurrency, delay, args.tokens, store=store)
    # Paced cells start their connections one by one over a response's time, as `python -m bench` does.
    ramp_s = delay * args.tokens / 1000
    if args.burst_first:
        burst = Scenario(Mode.STREAM, args.burst_first, 0.0, args.tokens, store=store)
        asyncio.run(warm_up(target, burst))
        asyncio.run(run_cell(target, burst, seconds))
    asyncio.run(warm_up(target, scenario))
    spy = subprocess.Popen([py_spy, "record", "--gil", "--nonblocking", "--rate", "250", "--format", "raw",
                            "--output", str(raw_path), "--duration", str(int(seconds + ramp_s + 2)),
                            "--pid", str(server.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    threads_before = procstat.thread_times(server.pid)
    run = asyncio.run(run_cell(target, scenario, seconds, ramp_s=ramp_s))
    threads_after = procstat.thread_times(server.pid)
    _, err = spy.communicate(timeout=seconds + 30)
    if not raw_path.exists():
        print(f"py-spy wrote nothing: {err.decode(errors='replace')}", file=sys.stderr)
        return 1
    deltas = sum(s.deltas for s in run.samples)
    cpu_us = run.cpu_s / deltas * 1e6 if run.cpu_s is not None and deltas else 0.0
    counts = breakdown(raw_path.read_text())
    total = sum(counts.values()) or 1
    print(f"c={concurrency} delay={delay:g} ms store={store}: {deltas} deltas, {cpu_us:.1f} us CPU/token, "
          f"{total} samples with the GIL")
    print("| stage | share | us/token |\n|---|---:|---:|")
    for stage, count in counts.most_common():
        print(f"| {stage} | {count / total:.0%} | {count / total * cpu_us:.1f} |")
    if deltas:
        print("\nWhat the GIL samples cannot see: each thread's CPU, in user space and in the kernel "
              "(from the cell's start, ramp included)")
        print("| thread | user us/token | kernel us/token |\n|---|---:|---:|")
        for name, user_us, kernel_us in thread_split(threads_before, threads_after, server.pid, deltas):
            print(f"| {name} | {user_us:.1f} | {kernel_us:.1f} |")
    if args.top:
        print("\n| function (own samples) | share | us/token |\n|---|---:|---:|")
        for frame, count in own_samples(raw_path.read_text()).most_common(args.top):
            print(f"| {frame} | {count / total:.1%} | {count / total * cpu_us:.1f} |")
    return 0


def thread_split(before: dict[int, procstat.ThreadTimes], after: dict[int, procstat.ThreadTimes], main_tid: int,
                 deltas: int) -> list[tuple[str, float, float]]:
    """The main thread's (the event loop's) and the other threads' CPU between two readings, in us
    per delivered token, user and kernel apart; a thread that started meanwhile counts from zero."""
    rows: dict[str, list[float]] = {_MAIN_THREAD: [0.0, 0.0], _OTHER_THREADS: [0.0, 0.0]}
    for tid, now in after.items():
        then = before.get(tid, procstat.ThreadTimes(0.0, 0.0))
        row = rows[_MAIN_THREAD if tid == main_tid else _OTHER_THREADS]
        row[0] += now.user_s - then.user_s
        row[1] += now.system_s - then.system_s
    return [(name, user_s / deltas * 1e6, system_s / deltas * 1e6) for name, (user_s, system_s) in rows.items()]


def own_samples(raw: str) -> Counter[str]:
    """Samples per innermost frame: where the interpreter was, not who called it."""
    counts: Counter[str] = Counter()
    for stack, samples in _stacks(raw):
        counts[stack.rsplit(";", 1)[-1]] += samples
    return counts


if __name__ == "__main__":
    raise SystemExit(main())
