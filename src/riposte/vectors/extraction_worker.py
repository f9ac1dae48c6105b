"""Text extraction of costly formats (PDF, HTML) in a child process with time and memory limits.

A small hostile PDF can cost minutes of CPU and a lot of memory in the parser. In a child process
it cannot hold the event loop or the GIL, a wall-clock deadline kills it, and an address-space
limit (RLIMIT_AS) stops it from taking the server's memory. Either limit fails the file with a
`last_error` naming the setting. One short-lived process per file: its start-up (about 0.2 s) is
small beside the parsing it guards, and nothing a parser leaves behind outlives the file.

The child is `riposte.vectors.extraction_child`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

import riposte
from riposte.vectors.extract import ExtractionError

_SOURCE_ROOT = str(Path(riposte.__file__).resolve().parent.parent)


@dataclass(frozen=True)
class ExtractionLimits:
    timeout_seconds: float
    memory_mb: int


async def extract_in_worker(filename: str, data: bytes, limits: ExtractionLimits) -> str:
    """The file's text, extracted by a child process; ExtractionError when it fails or exceeds a limit."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "riposte.vectors.extraction_child", filename, str(limits.memory_mb),
        str(limits.timeout_seconds),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_SOURCE_ROOT, os.environ.get("PYTHONPATH")]))},
    )
    try:
        async with asyncio.timeout(limits.timeout_seconds):
            output, _ = await child.communicate(data)
    except TimeoutError:
        raise ExtractionError("invalid_file", f"Text extraction took longer than the limit of "
                                              f"{limits.timeout_seconds:g} s (extraction_timeout_seconds).") from None
    finally:
        if child.returncode is None:  # timed out, or the ingestion was cancelled
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    return _result(output, child.returncode, limits)


def _result(output: bytes, returncode: int | None, limits: ExtractionLimits) -> str:
    try:
        result = orjson.loads(output)
    except orjson.JSONDecodeError:
        raise ExtractionError("invalid_file", f"Text extraction stopped (exit status {returncode}); it may have "
                                              f"exceeded the memory limit of {limits.memory_mb} MB "
                                              f"(extraction_memory_mb).") from None
    if "error" in result:
        raise ExtractionError(result["error"]["code"], result["error"]["message"])
    text: str = result["text"]
    return text
