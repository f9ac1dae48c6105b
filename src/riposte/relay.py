"""A stretch of a generator's batches that its consumer reads from the source itself.

The turn's events pass up a chain of async generators (the upstream stream, the upstream call,
the model loop, the turn) to the writer, and every paced upstream read steps the whole chain
twice: down to the socket read and back up with its batch. Python has no `yield from` for async
generators, so each level re-yields. A generator that only relays a source, turning each of its
reads into a batch, can instead yield a `Relay`: the consumer then reads `source` directly and
calls `feed` on each read, skipping the levels in between, and resumes the generator once the
source has ended or failed. Resumed normally, always: the levels in between pass a plain resume
down to the generator that yielded the relay, where `Relay.ended` raises the error, if any, in
the very place where the generator would have read it itself (an athrow would surface at the
top level's `yield` instead).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Generic, TypeVar

Read = TypeVar("Read")
Item = TypeVar("Item")


class Relay(Generic[Read, Item]):
    __slots__ = ("error", "feed", "source")

    def __init__(self, source: AsyncGenerator[Read], feed: Callable[[Read], Sequence[Item]]) -> None:
        self.source = source
        self.feed = feed
        # What ended the relay other than the source's end: the source's error, `feed`'s, or the
        # consumer's own (a failed write, a cancellation), raised by `ended` in the producer.
        self.error: BaseException | None = None

    def failed(self, error: BaseException) -> None:
        """The consumer stops reading because of `error`, which the producer then raises."""
        self.error = error

    def ended(self) -> None:
        """Called by the producer right after its `yield` resumes: raises what ended the relay
        early, if anything; returns when the source ran to its end."""
        error, self.error = self.error, None
        if error is not None:
            raise error
