"""The bounded look-ahead window of output moderation: pure bookkeeping over upstream chunks.

Chunks carrying answer text are held back, in order, together with every chunk behind them, until
the text they hold has passed a check. A check is due once `window_chars` new characters are held.
After a passed check everything is released except the last `overlap_chars` characters, which are
checked again with the text that follows: an unsafe phrase of up to `overlap_chars` characters
that a window boundary splits is therefore never even partly released before a check saw it whole.
At the end of the answer the rest is checked and released.

Chunks are released unchanged, in the order they came, except that a chunk whose text straddles
the cut is split in two (its text head alone, then the chunk with the rest of its text); the
originals are never mutated, since the record layer keeps them for its recording.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

Chunk = dict[str, Any]


@dataclass
class _Held:
    chunk: Chunk
    text: str


class LookAhead:
    def __init__(self, window_chars: int, overlap_chars: int) -> None:
        if not 0 <= overlap_chars < window_chars:
            raise ValueError("overlap_chars must be at least 0 and smaller than window_chars")
        self._window = window_chars
        self._overlap = overlap_chars
        self._held: deque[_Held] = deque()
        self._held_chars = 0
        self._unchecked_chars = 0

    def hold(self, chunk: Chunk) -> list[Chunk]:
        """Take one chunk; returns the chunks that may go out at once (a chunk without answer text
        while nothing is held: reasoning, tool calls, usage)."""
        text = answer_text(chunk)
        if not text and not self._held:
            return [chunk]
        self._held.append(_Held(chunk, text))
        self._held_chars += len(text)
        self._unchecked_chars += len(text)
        return []

    @property
    def check_due(self) -> bool:
        return self._unchecked_chars >= self._window

    @property
    def needs_final_check(self) -> bool:
        return self._unchecked_chars > 0

    @property
    def text(self) -> str:
        """Everything held: the text the next check reads."""
        return "".join(held.text for held in self._held)

    def passed(self, *, final: bool = False) -> list[Chunk]:
        """The held text passed its check: release all but the overlap (all of it when `final`)."""
        self._unchecked_chars = 0
        releasable = self._held_chars - (0 if final else self._overlap)
        released: list[Chunk] = []
        while self._held:
            front = self._held[0]
            size = len(front.text)
            if size <= releasable:
                self._held.popleft()
                released.append(front.chunk)
                releasable -= size
                self._held_chars -= size
            elif releasable > 0:
                head, tail = _split(front.chunk, releasable)
                released.append(head)
                front.chunk, front.text = tail, front.text[releasable:]
                self._held_chars -= releasable
                break
            else:
                break
        return released


def answer_text(chunk: Chunk) -> str:
    """The answer text a chunk carries (choice 0's `delta.content`), or ''."""
    for choice in chunk.get("choices") or ():
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            return content if isinstance(content, str) else ""
    return ""


def _split(chunk: Chunk, cut: int) -> tuple[Chunk, Chunk]:
    """A text-only chunk with the first `cut` characters, and the chunk with the rest (which keeps
    everything else it carried: logprobs, finish_reason, usage)."""
    choices = chunk["choices"]
    position = next(i for i, c in enumerate(choices) if isinstance(c, dict) and c.get("index", 0) == 0)
    choice = choices[position]
    content: str = choice["delta"]["content"]
    head: Chunk = {"choices": [{"index": 0, "delta": {"content": content[:cut]}}]}
    rest_choice = {**choice, "delta": {**choice["delta"], "content": content[cut:]}}
    tail: Chunk = {**chunk, "choices": [*choices[:position], rest_choice, *choices[position + 1:]]}
    return head, tail
