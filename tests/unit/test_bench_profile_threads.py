"""`python -m bench.profile` splits the worker's CPU by thread and by user and kernel time: the GIL
samples see neither the kernel's share nor SQLite working in the driver's thread."""

from __future__ import annotations

import os
import threading

from bench import procstat
from bench.profile import thread_split


def test_the_split_puts_the_main_thread_apart_and_counts_new_threads_from_zero() -> None:
    before = {100: procstat.ThreadTimes(1.0, 0.5), 101: procstat.ThreadTimes(0.2, 0.1)}
    after = {100: procstat.ThreadTimes(1.4, 0.6), 101: procstat.ThreadTimes(0.3, 0.3),
             102: procstat.ThreadTimes(0.1, 0.0)}
    rows = {name: (user, kernel) for name, user, kernel in thread_split(before, after, 100, deltas=100_000)}
    main_user, main_kernel = rows["main thread (event loop)"]
    other_user, other_kernel = rows["other threads (database driver, ...)"]
    assert (round(main_user, 6), round(main_kernel, 6)) == (4.0, 1.0)  # 0.4 s and 0.1 s over 100,000 tokens
    assert (round(other_user, 6), round(other_kernel, 6)) == (2.0, 2.0)


def test_thread_times_reads_every_thread_of_this_process() -> None:
    started, stop = threading.Event(), threading.Event()

    def spin() -> None:
        started.set()
        stop.wait()

    worker = threading.Thread(target=spin)
    worker.start()
    started.wait()
    try:
        times = procstat.thread_times(os.getpid())
        assert os.getpid() in times and worker.native_id in times
        assert all(t.user_s >= 0 and t.system_s >= 0 for t in times.values())
        assert sum(t.user_s + t.system_s for t in times.values()) > 0
    finally:
        stop.set()
        worker.join()
