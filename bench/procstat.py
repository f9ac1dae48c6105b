"""CPU time and resident memory of a server's process tree, read from /proc.

A server started with several workers is a supervisor plus children, so every figure is a sum
over the root process and all of its descendants.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_PROC = Path("/proc")


@dataclass(frozen=True)
class Usage:
    cpu_s: float
    rss_bytes: int
    pids: tuple[int, ...]


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may hold spaces): state, ppid, ..."""
    return _stat_fields_at(_PROC / str(pid) / "stat")


def _stat_fields_at(path: Path) -> list[str] | None:
    try:
        raw = path.read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def _cpu_s(pid: int) -> float:
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    user_s, system_s = _user_and_system_s(fields)
    return user_s + system_s


def _user_and_system_s(fields: list[str]) -> tuple[float, float]:
    # utime and stime are fields 14 and 15 of stat; 12 and 13 after the command name.
    return int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS


@dataclass(frozen=True)
class ThreadTimes:
    """One thread's CPU seconds in user space and in the kernel (system calls: socket reads and
    writes, epoll, the database's file I/O)."""

    user_s: float
    system_s: float


def thread_times(pid: int) -> dict[int, ThreadTimes]:
    """Each live thread of `pid` by thread id; the thread whose id is `pid` is the main thread.
    A sampling profiler that follows the GIL sees neither the kernel's share nor a thread working
    without the GIL (SQLite's own work in the database driver's thread); these times do."""
    times: dict[int, ThreadTimes] = {}
    try:
        tids = [int(entry.name) for entry in (_PROC / str(pid) / "task").iterdir()]
    except OSError:
        return times
    for tid in tids:
        fields = _stat_fields_at(_PROC / str(pid) / "task" / str(tid) / "stat")
        if fields is not None:
            times[tid] = ThreadTimes(*_user_and_system_s(fields))
    return times


def _rss_bytes(pid: int) -> int:
    try:
        return int((_PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def usage(root: int) -> Usage:
    pids = process_tree(root)
    return Usage(cpu_s=sum(_cpu_s(p) for p in pids), rss_bytes=sum(_rss_bytes(p) for p in pids), pids=tuple(pids))


def rss_bytes(pids: tuple[int, ...]) -> int:
    return sum(_rss_bytes(p) for p in pids)


@dataclass(frozen=True)
class MachineTimes:
    """Whole-machine CPU seconds from /proc/stat: busy (everything but idle and iowait) and steal."""

    busy_s: float
    steal_s: float

    @classmethod
    def now(cls) -> MachineTimes:
        fields = [int(v) for v in (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
        return cls(busy_s=(user + nice + system + irq + softirq) / _CLOCK_TICKS, steal_s=steal / _CLOCK_TICKS)


def own_cpu_s() -> float:
    """This process's CPU seconds (the load generator's)."""
    times = os.times()
    return times.user + times.system
