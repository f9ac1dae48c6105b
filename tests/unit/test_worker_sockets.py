"""The supervisor's socket for several workers: it holds the port, and each worker gets its own."""

from __future__ import annotations

import socket
from multiprocessing.reduction import ForkingPickler

import pytest

from riposte.worker_sockets import PortInUseError, worker_listener

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here")


def _in_a_worker(listener: socket.socket) -> socket.socket:
    """What a worker process gets: uvicorn sends the sockets to its workers pickled."""
    arrived = ForkingPickler.loads(ForkingPickler.dumps(listener))
    assert isinstance(arrived, socket.socket)
    return arrived


def test_the_supervisors_socket_holds_the_port_and_takes_no_connection() -> None:
    with worker_listener("127.0.0.1", 0) as listener, pytest.raises(ConnectionRefusedError):
        socket.create_connection(listener.getsockname(), timeout=2)


def test_each_worker_listens_on_a_socket_of_its_own_on_the_same_port() -> None:
    with worker_listener("127.0.0.1", 0) as listener:
        first, second = _in_a_worker(listener), _in_a_worker(listener)
        with first, second:
            assert first.getsockname() == second.getsockname() == listener.getsockname()
            assert len({listener.fileno(), first.fileno(), second.fileno()}) == 3
            for worker in (first, second):
                worker.listen(64)
            # The kernel spreads connections over both; every one is accepted by one of them.
            clients = [socket.create_connection(listener.getsockname(), timeout=2) for _ in range(32)]
            accepted = {id(worker): 0 for worker in (first, second)}
            for worker in (first, second):
                worker.setblocking(False)
                while True:
                    try:
                        connection, _ = worker.accept()
                    except BlockingIOError:
                        break
                    connection.close()
                    accepted[id(worker)] += 1
            for client in clients:
                client.close()
            assert sum(accepted.values()) == 32
            assert all(count > 0 for count in accepted.values()), accepted


def test_a_port_another_program_listens_on_is_refused() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(PortInUseError):
            worker_listener("127.0.0.1", other.getsockname()[1])


def test_a_port_another_server_of_workers_serves_is_refused() -> None:
    # With SO_REUSEPORT alone, a second server would join the first and take half its connections.
    with worker_listener("127.0.0.1", 0) as first, _in_a_worker(first) as serving:
        serving.listen()
        with pytest.raises(PortInUseError):
            worker_listener("127.0.0.1", first.getsockname()[1])
