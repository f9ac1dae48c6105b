"""Several worker processes on one port, each accepting connections on a listening socket of its own.

uvicorn's workers share one listening socket, and whichever worker wakes first accepts every
connection waiting in its queue: a burst of clients (64 keep-alive connections opened at once, or a
gateway's connection pool) lands mostly on one worker, and stays there for the connections' life
(measured: 8/56 and 17/47 splits of 64 connections between two workers; bench/RESULTS.md). With
`SO_REUSEPORT`, each worker listens on a socket of its own on the same address and the kernel
hashes each new connection to one of them, so the workers take about equal shares.

`worker_listener` makes the socket the supervisor hands to uvicorn's `Multiprocess`: bound with
`SO_REUSEPORT`, so the port is the server's, but never listening, so the kernel routes nothing to it.
Every worker process gets it by pickling (uvicorn starts workers with `spawn`), and unpickling it
binds a new socket for that worker, which uvicorn then listens on; a restarted worker gets a new one.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

# Where the platform has no SO_REUSEPORT, the workers share one socket, as uvicorn does.
SUPPORTED = hasattr(socket, "SO_REUSEPORT")


class PortInUseError(OSError):
    """Another program listens on the port."""


def worker_listener(host: str, port: int) -> socket.socket:
    """The supervisor's socket for `host:port` (port 0: one the kernel picks, the same for every
    worker). Raises `PortInUseError` when a program already listens there, including another server
    of workers, which would otherwise share the port's connections with this one (one still starting,
    whose workers do not listen yet, is not seen)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if port:
        _refuse_taken_port(family, host, port)
    placeholder = _PerWorkerListener(family, socket.SOCK_STREAM)
    try:
        _bind_reusing_port(placeholder, host, port)
    except BaseException:
        placeholder.close()
        raise
    placeholder.set_inheritable(True)
    return placeholder


def _refuse_taken_port(family: socket.AddressFamily, host: str, port: int) -> None:
    # A bind without SO_REUSEPORT fails while a socket listens on the port, with SO_REUSEPORT or
    # without (SO_REUSEADDR only lets it past connections closing there); closed before our own bind.
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(exc.errno, "already in use") from exc
        raise
    finally:
        probe.close()


def _bind_reusing_port(sock: socket.socket, host: str, port: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))


def _worker_socket(family: socket.AddressFamily, address: tuple[Any, ...]) -> socket.socket:
    """Run in a worker process as it starts: its own socket on the supervisor's address."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        _bind_reusing_port(sock, address[0], address[1])
    except BaseException:
        sock.close()
        raise
    return sock


class _PerWorkerListener(socket.socket):
    """A socket that, sent to a worker process, arrives there as a new socket on its address."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The exact type is not in multiprocessing's table of socket reducers (which would send the
        # descriptor itself), so pickling comes here.
        return (_worker_socket, (self.family, self.getsockname()))
