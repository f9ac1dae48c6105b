"""Run a real Riposte server on a loopback port inside the current process, in its own thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType

import uvicorn

from riposte.api.websocket_settings import uvicorn_websocket_options
from riposte.app import create_app
from riposte.config import Settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningServer:
    """`with RunningServer(settings) as server:` then point an SDK client at `server.base_url`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.model_copy(update={"host": "127.0.0.1", "port": free_port()})
        config = uvicorn.Config(create_app(self.settings), host="127.0.0.1", port=self.settings.port,
                                log_level="warning", access_log=False, lifespan="on",
                                **uvicorn_websocket_options(self.settings.websocket, self.settings.max_request_bytes))
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="riposte-test-server", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}/v1"

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.serve()

    def task_count(self) -> int:
        """Tasks alive on the server's event loop (uvicorn's own included): a test that ends with
        more than it started with leaked some."""
        assert self._loop is not None

        async def count() -> int:
            return len(asyncio.all_tasks()) - 1  # not this one

        return asyncio.run_coroutine_threadsafe(count(), self._loop).result(timeout=10)

    def start(self) -> RunningServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Riposte test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
