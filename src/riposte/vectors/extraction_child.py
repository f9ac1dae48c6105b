"""The child process of bounded text extraction (see extraction_worker.py).

Run as `python -m riposte.vectors.extraction_child FILENAME MEMORY_MB`: the file's bytes on stdin,
one JSON object on stdout, `{"text": ...}` or `{"error": {"code": ..., "message": ...}}`. It imports
only what extraction needs, since its start-up is paid once per file.
"""

from __future__ import annotations

import contextlib
import sys

import orjson

from riposte.vectors.extract import ExtractionError, extract_text


def _limit_memory(megabytes: int) -> None:
    import resource  # POSIX only; elsewhere only the deadline applies

    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str]) -> int:
    filename, memory_mb = argv[0], int(argv[1])
    with contextlib.suppress(ImportError, ValueError, OSError):
        _limit_memory(memory_mb)  # the file's own bytes count too
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
