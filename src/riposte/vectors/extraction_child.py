"""The child process of bounded text extraction (see extraction_worker.py).

Run as `python -m riposte.vectors.extraction_child FILENAME MEMORY_MB TIMEOUT_SECONDS`: the file's bytes on stdin,
one JSON object on stdout, `{"text": ...}` or `{"error": {"code": ..., "message": ...}}`. It imports
only what extraction needs, since its start-up is paid once per file.
"""

from __future__ import annotations

import contextlib
import sys

import orjson

from riposte.vectors.extract import ExtractionError, extract_text


def _limit(memory_mb: int, cpu_seconds: int) -> None:
    import resource  # POSIX only; elsewhere only the parent's deadline applies

    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))  # the file's own bytes count too
    # A backstop: the parent kills the child at its deadline, unless the parent died first.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))


def _die_with_parent() -> None:
    """Linux: a server killed with SIGKILL takes its extraction along instead of leaving it running."""
    import ctypes
    import signal

    set_parent_death_signal = 1  # PR_SET_PDEATHSIG
    ctypes.CDLL(None).prctl(set_parent_death_signal, signal.SIGKILL)


def main(argv: list[str]) -> int:
    filename, memory_mb, timeout_seconds = argv[0], int(argv[1]), float(argv[2])
    with contextlib.suppress(ImportError, ValueError, OSError, AttributeError):
        _limit(memory_mb, int(timeout_seconds) + 5)
    with contextlib.suppress(ImportError, OSError, AttributeError):
        _die_with_parent()
    try:
        result: dict[str, object] = {"text": extract_text(filename, sys.stdin.buffer.read())}
    except ExtractionError as exc:
        result = {"error": {"code": exc.code, "message": exc.message}}
    except MemoryError:
        result = {"error": {"code": "invalid_file", "message": f"Text extraction exceeded the memory limit of "
                                                               f"{memory_mb} MB (extraction_memory_mb)."}}
    sys.stdout.buffer.write(orjson.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
