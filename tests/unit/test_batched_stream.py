"""The batched streaming response: order, trailer, coalescing, and clean-up on failure or disconnect."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import pytest

from riposte.api.batched_stream import FIRST_BATCH, MAX_BATCH, BatchedStreamingResponse
from riposte.relay import Relay

SCOPE: dict[str, Any] = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}}


def _encode(item: int) -> bytes:
    return b"<%d>" % item


class _Client:
    """An ASGI peer that records what is sent and can hang up."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.finished = False
        self.hang_up = anyio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            assert not self.finished, "a body part after the end of the body"
            if message["body"]:
                self.bodies.append(message["body"])
            self.finished = not message.get("more_body")


async def _run(response: BatchedStreamingResponse[int], client: _Client) -> None:
    await response(SCOPE, client.receive, client.send)  # type: ignore[arg-type]


def _response(items: AsyncGenerator[list[int] | Relay[int, int]]) -> BatchedStreamingResponse[int]:
    return BatchedStreamingResponse(items, _encode, trailer=b"<done>", media_type="text/event-stream", headers={})


async def test_items_ready_together_leave_in_fewer_writes_in_order_with_the_trailer_last() -> None:
    async def burst() -> AsyncGenerator[list[int]]:
        for item in range(100):
            yield [item]

    client = _Client()
    await _run(_response(burst()), client)

    assert b"".join(client.bodies) == b"".join(_encode(i) for i in range(100)) + b"<done>"
    assert len(client.bodies) < 100
    assert all(body.count(b"<") <= MAX_BATCH + 1 for body in client.bodies)
    assert client.finished


async def test_a_large_batch_leaves_its_first_items_first_in_writes_that_grow() -> None:
    """One upstream read with a whole answer: its first delta is not held back behind the rest."""
    async def one_read() -> AsyncGenerator[list[int]]:
        yield list(range(300))

    client = _Client()
    await _run(_response(one_read()), client)

    assert b"".join(client.bodies) == b"".join(_encode(i) for i in range(300)) + b"<done>"
    assert client.bodies[0] == b"".join(_encode(i) for i in range(FIRST_BATCH))
    sizes = [body.count(b"<") for body in client.bodies]
    assert sizes[:3] == [FIRST_BATCH, FIRST_BATCH * 2, FIRST_BATCH * 4]
    assert max(sizes) <= MAX_BATCH + 1


async def test_empty_batches_send_nothing_of_their_own() -> None:
    async def sparse() -> AsyncGenerator[list[int]]:
        yield []
        yield [0]
        await anyio.sleep(0.01)
        yield []
        yield [1]

    client = _Client()
    await _run(_response(sparse()), client)
    assert client.bodies == [b"<0>", b"<1><done>"]


async def test_items_that_trickle_in_each_leave_before_the_next_exists() -> None:
    client = _Client()

    async def trickle() -> AsyncGenerator[list[int]]:
        for item in range(3):
            yield [item]
            await anyio.sleep(0.01)
            assert client.bodies[-1].endswith(_encode(item)), "the item waited for the next one"

    await _run(_response(trickle()), client)
    assert b"".join(client.bodies) == b"<0><1><2><done>"


async def test_a_failing_generator_sends_no_trailer() -> None:
    async def failing() -> AsyncGenerator[list[int]]:
        yield [1]
        raise RuntimeError("boom")

    client = _Client()
    with pytest.raises(BaseException) as caught:
        await _run(_response(failing()), client)
    assert "boom" in repr(caught.value)
    assert b"<done>" not in b"".join(client.bodies)


async def test_a_failing_disconnect_watch_leaves_the_answer_whole_and_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    async def trickle() -> AsyncGenerator[list[int]]:
        for item in range(3):
            await anyio.sleep(0.01)
            yield [item]

    class _BrokenReceive(_Client):
        async def receive(self) -> dict[str, Any]:
            raise RuntimeError("receive broke")

    client = _BrokenReceive()
    with anyio.fail_after(5):
        await _run(_response(trickle()), client)

    assert b"".join(client.bodies) == b"<0><1><2><done>" and client.finished
    assert "receive broke" in caplog.text


async def test_a_client_hang_up_closes_the_generator_at_once() -> None:
    closed = anyio.Event()
    client = _Client()

    async def endless() -> AsyncGenerator[list[int]]:
        try:
            item = 0
            while True:
                yield [item]
                item += 1
                if item == 5:
                    client.hang_up.set()
                await anyio.sleep(0.001)
        finally:
            closed.set()

    with anyio.fail_after(5):
        await _run(_response(endless()), client)
        await closed.wait()
    assert b"<done>" not in b"".join(client.bodies)


async def test_a_hang_up_during_a_slow_write_ends_the_waiting_generator_and_lets_its_clean_up_wait() -> None:
    """The client stops reading (the write waits on flow control) while the generator waits for
    its next item, then hangs up: the cancellation reaches the generator where it waits, and
    clean-up that has to wait itself (storing an abandoned response) still runs to its end."""
    cleaned_up = anyio.Event()
    client = _Client()

    async def stalled_send(message: dict[str, Any]) -> None:
        await client.send(message)
        if message["type"] == "http.response.body":
            client.hang_up.set()
            await anyio.sleep_forever()

    async def items() -> AsyncGenerator[list[int]]:
        try:
            yield [0]
            yield [1]
            await anyio.sleep_forever()
            yield [2]
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.01)
                cleaned_up.set()

    with anyio.fail_after(5):
        await _response(items())(SCOPE, client.receive, stalled_send)  # type: ignore[arg-type]
    assert cleaned_up.is_set()
    assert b"".join(client.bodies) == b"<0><1>"


class _Valve:
    """A `Backpressure` the test opens and closes."""

    def __init__(self) -> None:
        self.open = anyio.Event()
        self.closed = True

    @property
    def full(self) -> bool:
        return self.closed

    async def room(self) -> None:
        await self.open.wait()
        self.closed = False


async def test_a_full_backpressure_holds_the_next_step_after_sending_what_is_ready() -> None:
    stepped: list[int] = []

    async def burst() -> AsyncGenerator[list[int]]:
        for item in range(3):
            stepped.append(item)
            yield [item]

    valve, client = _Valve(), _Client()
    response = BatchedStreamingResponse(burst(), _encode, trailer=b"<done>", media_type="text/event-stream",
                                        headers={}, backpressure=valve)
    async with anyio.create_task_group() as group:
        group.start_soon(_run, response, client)
        await anyio.sleep(0.05)
        assert stepped == [], "the generator was stepped while the backpressure was full"
        valve.open.set()
    assert b"".join(client.bodies) == b"<0><1><2><done>"


async def test_the_stream_is_written_by_a_task_of_its_own() -> None:
    """Each paced read wakes the task that steps the generator; under the request's task that wake
    resumed some thirty frames of middleware and routing (bench/RESULTS.md, twelfth pass)."""
    stepped_by: list[asyncio.Task[Any] | None] = []

    async def items() -> AsyncGenerator[list[int]]:
        stepped_by.append(asyncio.current_task())
        yield [1]

    client = _Client()
    await _run(_response(items()), client)
    assert stepped_by and stepped_by[0] is not asyncio.current_task()
    assert b"".join(client.bodies) == b"<1><done>"


async def test_cancelling_the_request_task_closes_the_generator_and_ends_the_request_cancelled() -> None:
    closed, waiting = asyncio.Event(), asyncio.Event()

    async def stalled() -> AsyncGenerator[list[int]]:
        try:
            yield [1]
            waiting.set()
            await asyncio.Event().wait()
            yield [2]
        finally:
            closed.set()

    request = asyncio.create_task(_run(_response(stalled()), _Client()))
    await asyncio.wait_for(waiting.wait(), 5)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(request, 5)
    assert closed.is_set()


async def test_a_cancellation_the_generator_swallows_still_ends_the_request_cancelled() -> None:
    """The writer task hands the request task's cancellation to the generator; one that catches it
    and ends normally must not make the request's canceller wait for an end that never comes."""
    waiting = asyncio.Event()

    async def stubborn() -> AsyncGenerator[list[int]]:
        yield [1]
        waiting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return

    request = asyncio.create_task(_run(_response(stubborn()), _Client()))
    await asyncio.wait_for(waiting.wait(), 5)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(request, 5)


# A generator that lends a source (riposte/relay.py): the writer reads the source itself, making
# each read a batch with `feed`, and resumes the generator after the source's end or failure.

def _tens(read: int) -> list[int]:
    return [read * 10, read * 10 + 1]


async def test_a_relay_is_read_by_the_writer_and_the_generator_goes_on_after_its_end() -> None:
    resumed_by: list[str] = []

    async def source() -> AsyncGenerator[int]:
        for read in (1, 2, 3):
            await anyio.sleep(0.005)
            yield read
            resumed_by.append(sys._getframe(1).f_code.co_name)

    async def items() -> AsyncGenerator[list[int] | Relay[int, int]]:
        yield [0]
        relay = Relay(source(), _tens)
        yield relay
        relay.ended()
        yield [99]

    client = _Client()
    await _run(_response(items()), client)
    assert b"".join(client.bodies) == b"<0><10><11><20><21><30><31><99><done>"
    assert resumed_by == ["_write_all"] * 3, "a read went through the generator, not the writer"
    assert len(client.bodies) >= 4, "a read's items waited for the next read"


@pytest.mark.parametrize("fails_in", ["source", "feed"])
async def test_a_relays_error_is_raised_in_the_generator_where_it_yielded_the_relay(fails_in: str) -> None:
    seen: list[BaseException] = []

    async def source() -> AsyncGenerator[int]:
        yield 1
        await anyio.sleep(0.005)
        yield 2
        if fails_in == "source":
            raise RuntimeError("the upstream broke")
        yield 3

    def feed(read: int) -> list[int]:
        if fails_in == "feed" and read == 3:
            raise RuntimeError("a malformed read")
        return _tens(read)

    async def items() -> AsyncGenerator[list[int] | Relay[int, int]]:
        relay = Relay(source(), feed)
        yield relay
        try:
            relay.ended()
        except RuntimeError as exc:
            seen.append(exc)
            yield [-1]  # the generator decides: here, a failure item and a normal end

    client = _Client()
    await _run(_response(items()), client)
    assert [str(exc) for exc in seen] == ["the upstream broke" if fails_in == "source" else "a malformed read"]
    assert b"".join(client.bodies) == b"<10><11><20><21><-1><done>"


async def _relaying_and_cleaning_up(source: AsyncGenerator[int], events: list[str]
                                    ) -> AsyncGenerator[list[int] | Relay[int, int]]:
    """Lends `source`, then notes the error that ended the relay and a clean-up that has to wait
    (storing an abandoned response)."""
    relay = Relay(source, _tens)
    yield relay
    try:
        relay.ended()
    except BaseException as exc:
        events.append(f"generator saw {type(exc).__name__}")
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.005)
            events.append("generator cleaned up")


async def test_a_failed_write_while_a_relay_waits_ends_the_source_then_the_generator_with_its_error() -> None:
    events: list[str] = []

    async def source() -> AsyncGenerator[int]:
        try:
            yield 1
            await anyio.sleep(0.01)
            yield 2
        finally:
            events.append("source closed")

    async def failing_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message["body"]:
            raise OSError("the socket broke")

    with pytest.raises(OSError, match="the socket broke"):
        await _response(_relaying_and_cleaning_up(source(), events))(
            SCOPE, _Client().receive, failing_send)  # type: ignore[arg-type]
    assert events == ["source closed", "generator saw OSError", "generator cleaned up"]


async def test_a_hang_up_while_a_relay_waits_cancels_the_read_and_the_generator_cleans_up() -> None:
    events: list[str] = []
    client = _Client()

    async def source() -> AsyncGenerator[int]:
        try:
            yield 1
            client.hang_up.set()
            await anyio.sleep_forever()
            yield 2
        finally:
            events.append("source closed")

    with anyio.fail_after(5):
        await _run(_response(_relaying_and_cleaning_up(source(), events)), client)
    assert events == ["source closed", "generator saw CancelledError", "generator cleaned up"]
    assert b"".join(client.bodies) == b"<10><11>"
