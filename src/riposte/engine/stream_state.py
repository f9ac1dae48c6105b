"""The stream state machine: upstream chat chunks in, Responses stream events out.

The only place that allocates item ids, output_index, content_index and sequence_number, and the
only place that builds events. The streaming and non-streaming paths both run through it, so they
cannot disagree. Events are plain dicts, built once and serialized once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from riposte import ids
from riposte.engine.citation_filter import CitationFilter
from riposte.engine.client_items import CUSTOM_INPUT_KEY
from riposte.engine.client_tools import ID_PREFIXES, ClientTool, call_item, custom_input
from riposte.engine.response_object import ResponseObject, snapshot
from riposte.engine.usage import reported_usage
from riposte.errors import UpstreamError
from riposte.tools.citations import CitableUrls

Event = dict[str, Any]

# Generous enough to be unreachable by a real model; `Settings.max_output_chars` sets the real one.
DEFAULT_MAX_OUTPUT_CHARS = 4_000_000


class OutputLimitReached(Exception):
    """The response produced `max_output_chars` characters; the current call ends as `length`."""


class PartKind(str, Enum):
    TEXT = "output_text"
    REFUSAL = "refusal"


@dataclass
class _Part:
    kind: PartKind
    content_index: int
    pieces: list[str] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    # The text as the model wrote it, citation markers included: history replays this.
    raw_pieces: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def raw_text(self) -> str:
        return "".join(self.raw_pieces) if self.raw_pieces else self.text


@dataclass
class _MessageItem:
    item_id: str
    output_index: int
    parts: list[_Part] = field(default_factory=list)

    def part(self, kind: PartKind) -> _Part | None:
        # Called for every streamed token: a plain loop, not a generator expression, on this path.
        for part in self.parts:
            if part.kind is kind:
                return part
        return None


@dataclass
class _ReasoningItem:
    item_id: str
    output_index: int
    pieces: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ArgumentStream:
    """A server-side call whose output item opens as soon as the model names it, and whose
    arguments stream as `response.<item type>_arguments.delta` / `.done` events (e.g. `mcp_call`)."""

    id_prefix: str
    # The item as announced, without `arguments` (the state machine streams those in).
    fields: dict[str, Any]

    @property
    def item_type(self) -> str:
        return str(self.fields["type"])


_ARGUMENTS_DELTA = "response.function_call_arguments.delta"
_CUSTOM_INPUT_DELTA = "response.custom_tool_call_input.delta"


@dataclass
class ToolCall:
    """One tool call as the model streamed it."""

    index: int
    call_id: str = ""
    name: str = ""
    argument_pieces: list[str] = field(default_factory=list)
    item_id: str | None = None
    output_index: int | None = None
    # Set when a server-side call's item streams its arguments (ArgumentStream).
    streamed: ArgumentStream | None = None
    # The client tool behind a call that is not a plain function (custom, namespaced, shell...).
    shape: ClientTool | None = None
    # The event that streams the arguments as they come; None for client shapes whose item is only
    # known once the call is complete (a custom tool's JSON wrapper, the built-ins' fields).
    delta_event: str | None = _ARGUMENTS_DELTA
    # Queued once named, to open in turn (client calls one after another, and after the server
    # calls whose items were open or waiting when they were named; a server call named while
    # another's item is open, when the turn runs it); closed once a client call's item is done,
    # which can be before the upstream call ends.
    queued: bool = False
    closed: bool = False

    @property
    def arguments(self) -> str:
        return "".join(self.argument_pieces)


@dataclass(frozen=True)
class ToolItem:
    """A server-side tool call's output item, as the state machine announced it."""

    item_id: str
    output_index: int
    item_type: str


@dataclass
class CallResult:
    """What one upstream call produced, for the turn loop and for history."""

    text: str  # as the model wrote it, citation markers included
    refusal: str | None
    reasoning: str
    tool_calls: list[ToolCall]
    finish_reason: str | None
    usage: dict[str, Any] | None


# Turns a finished reasoning item into its `encrypted_content` (include reasoning.encrypted_content).
ReasoningSealer = Callable[[dict[str, Any]], str]


class ResponseStream:
    def __init__(
        self, response: ResponseObject, server_tool_names: frozenset[str] = frozenset(),
        seal_reasoning: ReasoningSealer | None = None,
        *, argument_streams: Mapping[str, ArgumentStream] | None = None,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        client_shapes: Mapping[str, ClientTool] | None = None,
        first_sequence: int = 0,
    ) -> None:
        self.response = response
        # Characters the response may still produce, over all its upstream calls.
        self._output_budget = max_output_chars
        # Calls to these run on the server and get their own items; any other call is a client
        # call: a function_call item, or the item of the client tool named in `client_shapes`.
        self._server_tool_names = server_tool_names
        self._seal_reasoning = seal_reasoning
        self._argument_streams = argument_streams or {}
        # Server-side tool items announced and not yet done, by item id (closed on failure).
        self._open_tool_items: dict[str, ToolItem] = {}
        # Server-side calls whose item streams (ArgumentStream) named while another item was still
        # open (a server call's, or a client call's with unfinished arguments): announced when the
        # turn runs them (`streamed_tool_item`), one item after another.
        self._waiting_server_calls: list[ToolCall] = []
        # Client calls named while a server-side call's item was open or waiting: added once every
        # such item is done (the turn runs the server calls after the upstream call ends), so that
        # no item is added beside an open one; with their arguments as the model wrote them, once
        # the upstream call has ended (None before).
        self._calls_after_server_items: list[tuple[ToolCall, str | None]] = []
        self._client_shapes = client_shapes or {}
        self._citable_files: dict[str, str] = {}
        self._citable_urls = CitableUrls()
        self._citations: CitationFilter | None = None
        # Not 0 when a background turn is retried: it numbers its events after the earlier attempt's.
        self._sequence = first_sequence
        self._events: list[Event] = []
        self._begin_call()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, announce_created: bool = True) -> list[Event]:
        """The opening events; `response.created` only when no earlier event announced the response
        (a queued background response's stream has it from the queue)."""
        if announce_created:
            self._emit({"type": "response.created", "response": snapshot(self.response)})
        self._emit({"type": "response.in_progress", "response": snapshot(self.response)})
        return self.drain()

    def partial_output(self) -> dict[str, str]:
        """The text and reasoning of the upstream call streaming now, so far (the inspector's live
        view reads it when a page is asked for; nothing is copied per token)."""
        text = "".join(part.text for message in self._messages() for part in message.parts)
        return {"text": text, "reasoning": "".join(self._reasoning_pieces)}

    def drain(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _emit(self, event: Event) -> None:
        event["sequence_number"] = self._sequence
        self._sequence += 1
        self._events.append(event)

    def cite(self, citable_files: dict[str, str], citable_urls: dict[str, str] | None = None) -> None:
        """From now on, cut `<|file-…|>` markers naming these files out of message text, and annotate
        links to these URLs (url -> title)."""
        self._citable_files.update(citable_files)
        self._citable_urls.add(citable_urls or {})
        if self._citations is None and self._message is None and self._cites_anything():
            # Tools run between upstream calls, after this call's state was reset.
            self._citations = CitationFilter(self._citable_files, self._citable_urls)

    def _cites_anything(self) -> bool:
        return bool(self._citable_files) or bool(self._citable_urls)

    def _begin_call(self) -> None:
        self._citations = CitationFilter(self._citable_files, self._citable_urls) if self._cites_anything() else None
        self._message: _MessageItem | None = None
        # Messages of this call already done: a tool call that follows text ends its message first.
        self._ended_messages: list[_MessageItem] = []
        # The message's text part while a token can be appended to it as it is (no citation filter,
        # and no logprobs or open reasoning item in the chunk's way): nearly every streamed token.
        self._plain_text: _Part | None = None
        self._reasoning: _ReasoningItem | None = None
        self._reasoning_pieces: list[str] = []
        self._tool_calls: dict[int, ToolCall] = {}
        # Client calls stream one at a time, as OpenAI's do (clients that track a single current
        # item rely on it): the live one, and those named since, waiting for it to be done.
        self._live_call: ToolCall | None = None
        self._waiting_calls: list[ToolCall] = []
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None

    # -- feeding chunks ----------------------------------------------------------------------

    @property
    def call_finished(self) -> bool:
        """Whether the current upstream call said why it stopped: a stream without a finish reason
        was cut short, however cleanly it closed."""
        return self._finish_reason is not None

    def feed(self, chunk: dict[str, Any]) -> None:
        """Raises `UpstreamError` for a value of the wrong type, before anything is built from it,
        and `OutputLimitReached` at the output cap. Other malformations raise TypeError,
        AttributeError or ValueError, also before any state is changed by the offending field."""
        usage = chunk.get("usage")
        if usage:
            self._usage = reported_usage(_checked(usage, dict, "usage"))
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            self._feed_delta(delta, choice.get("logprobs"))
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                self._finish_reason = _checked(finish_reason, str, "finish_reason")

    def refuse(self, refusal: str) -> None:
        """A guardrail stopped the answer: the message (opened now if the model has said nothing)
        gets a `refusal` part, and the call ends as a normal stop."""
        self._part_delta(PartKind.REFUSAL, refusal, None)
        self._finish_reason = "stop"

    def _feed_delta(self, delta: dict[str, Any], logprobs: dict[str, Any] | None) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            self._spend(_checked(reasoning, str, "delta.reasoning_content"))
            self._reasoning_delta(reasoning)
        content = delta.get("content")
        if content:
            if type(content) is not str:
                raise _wrong_type("delta.content", content, str)
            self._output_budget -= len(content)
            if self._output_budget < 0:
                self._reach_output_limit()
            plain = self._plain_text
            if plain is not None and not logprobs and self._reasoning is None:
                # The same as `_part_delta` would do here, without its five calls per token, and
                # `_emit` inlined: the event is made whole, with its sequence number.
                plain.pieces.append(content)
                message = self._message
                assert message is not None
                sequence = self._sequence
                self._sequence = sequence + 1
                self._events.append({"type": "response.output_text.delta", "item_id": message.item_id,
                                     "output_index": message.output_index, "content_index": plain.content_index,
                                     "delta": content, "logprobs": [], "sequence_number": sequence})
            else:
                self._part_delta(PartKind.TEXT, content, logprobs)
        refusal = delta.get("refusal")
        if refusal:
            self._spend(_checked(refusal, str, "delta.refusal"))
            self._part_delta(PartKind.REFUSAL, refusal, None)
        for call in delta.get("tool_calls") or ():
            self._tool_call_delta(call)

    def _spend(self, text: str) -> None:
        self._output_budget -= len(text)
        if self._output_budget < 0:
            self._reach_output_limit()

    def _reach_output_limit(self) -> None:
        self._finish_reason = "length"
        raise OutputLimitReached()

    def _reasoning_delta(self, delta: str) -> None:
        item = self._reasoning
        if item is None:
            self._end_live_call()
            item_id = ids.reasoning_id()
            item = self._reasoning = _ReasoningItem(item_id, self._add_item(self._reasoning_item(item_id, "")))
            # The part is announced before its first delta, as for a message's text: the openai Node
            # SDK's stream accumulator refuses a reasoning_text delta whose part was never added.
            self._emit({"type": "response.content_part.added", "item_id": item_id, "output_index": item.output_index,
                        "content_index": 0, "part": _reasoning_part("")})
        item.pieces.append(delta)
        self._reasoning_pieces.append(delta)
        self._emit({"type": "response.reasoning_text.delta", "item_id": item.item_id,
                    "output_index": item.output_index, "content_index": 0, "delta": delta})

    def _part_delta(self, kind: PartKind, delta: str, logprobs: dict[str, Any] | None) -> None:
        self._close_reasoning()
        message = self._message
        if message is None:
            self._end_live_call()
            message_id = ids.message_id()
            item = {"id": message_id, "type": "message", "role": "assistant", "status": "in_progress",
                    "content": []}
            message = self._message = _MessageItem(message_id, self._add_item(item))
        part = message.part(kind)
        if part is None:
            part = _Part(kind, len(message.parts))
            message.parts.append(part)
            self._emit({"type": "response.content_part.added", "item_id": message.item_id,
                        "output_index": message.output_index, "content_index": part.content_index,
                        "part": _part_body(kind, "", [])})
        if kind is PartKind.TEXT:
            if self._citations is None:
                self._plain_text = part
            self._text_delta(message, part, delta, _delta_logprobs(logprobs))
        else:
            part.pieces.append(delta)
            self._emit({"type": "response.refusal.delta", "item_id": message.item_id,
                        "output_index": message.output_index, "content_index": part.content_index,
                        "delta": delta})

    def _text_delta(self, message: _MessageItem, part: _Part, delta: str, logprobs: list[dict[str, Any]]) -> None:
        annotations: list[dict[str, Any]] = []
        if self._citations is not None:
            part.raw_pieces.append(delta)
            delta, annotations = self._citations.feed(delta)
        self._emit_text(message, part, delta, logprobs, annotations)

    def _emit_text(
        self, message: _MessageItem, part: _Part, delta: str, logprobs: list[dict[str, Any]],
        annotations: list[dict[str, Any]],
    ) -> None:
        if delta:
            part.pieces.append(delta)
            part.logprobs.extend(logprobs)
            self._emit({"type": "response.output_text.delta", "item_id": message.item_id,
                        "output_index": message.output_index, "content_index": part.content_index,
                        "delta": delta, "logprobs": logprobs})
        for annotation in annotations:
            self._emit({"type": "response.output_text.annotation.added", "item_id": message.item_id,
                        "output_index": message.output_index, "content_index": part.content_index,
                        "annotation_index": len(part.annotations), "annotation": annotation})
            part.annotations.append(annotation)

    def _tool_call_delta(self, delta: dict[str, Any]) -> None:
        self._close_reasoning()
        index = int(delta.get("index") or 0)
        call = self._tool_calls.get(index)
        if call is None:
            call = self._tool_calls[index] = ToolCall(index=index)
        # A backend with native custom tools streams `custom.input` where functions stream arguments.
        function = delta.get("function") or delta.get("custom") or {}
        if delta.get("id"):
            call.call_id = _checked(delta["id"], str, "delta.tool_calls[].id")
        if function.get("name"):
            call.name += _checked(function["name"], str, "delta.tool_calls[].function.name")
        fragment = function.get("arguments") or function.get("input") or ""
        if fragment:
            self._spend(_checked(fragment, str, "delta.tool_calls[].function.arguments"))
        if call.item_id is None and call.name and not call.queued:
            if self._is_client_call(call.name):
                self._end_message()
                call.queued = True
                if self._open_tool_items or self._waiting_server_calls or self._calls_after_server_items:
                    self._calls_after_server_items.append((call, None))
                else:
                    self._waiting_calls.append(call)
            elif call.name in self._argument_streams:
                self._end_message()
                self._end_live_call()
                # A client call whose arguments are not whole yet stays open (an interleaving
                # backend): like an open server item, it makes this call wait to be announced.
                if self._open_tool_items or self._waiting_server_calls or self._live_call is not None:
                    call.queued, call.streamed = True, self._argument_streams[call.name]
                    self._waiting_server_calls.append(call)
                else:
                    self._open_streamed_tool_call(call, self._argument_streams[call.name])
        if fragment:
            if call.closed:
                self._late_fragment(call, fragment)
                return
            call.argument_pieces.append(fragment)
            if call.item_id is not None and call.delta_event is not None:
                self._emit({"type": call.delta_event, "item_id": call.item_id,
                            "output_index": call.output_index, "delta": fragment})
        if self._waiting_calls:
            self._open_waiting_calls()

    def _open_waiting_calls(self) -> None:
        """Open the client calls named so far, one after another: the live call is done first, once
        its arguments are a whole JSON object (nothing valid can follow one). A backend that streams
        calls in turn (OpenAI, vLLM, llama.cpp) has finished a call's arguments before it names the
        next; one that interleaves them has the next wait, its arguments kept, until then or the end."""
        while self._waiting_calls:
            live = self._live_call
            if live is not None:
                if not _arguments_whole(live):
                    return
                self._close_client_call(live, "completed")
            call = self._live_call = self._waiting_calls.pop(0)
            self._open_function_call(call)

    def _end_live_call(self) -> None:
        """A message, reasoning or server-side call item is about to open: the live client call is
        done first when its arguments are whole (if not, the backend is still writing them and the
        items overlap)."""
        live = self._live_call
        if live is not None and _arguments_whole(live):
            self._close_client_call(live, "completed")

    def _late_fragment(self, call: ToolCall, fragment: str) -> None:
        # Whitespace after a whole JSON object changes nothing; anything else would have made the
        # arguments already announced as done invalid, which the response cannot take back.
        if fragment.strip():
            raise UpstreamError(f"upstream continued tool call {call.index}'s arguments after they were a whole "
                                "JSON object and the call was done")

    def _is_client_call(self, name: str) -> bool:
        return name not in self._server_tool_names

    def _open_function_call(self, call: ToolCall) -> None:
        if not call.call_id:
            call.call_id = ids.call_id()
        shape = call.shape = self._client_shapes.get(call.name)
        if shape is not None:
            self._open_shaped_call(call, shape)
            return
        call.item_id = ids.function_call_id()
        call.output_index = self._add_item(_function_call_item(call, "in_progress"))
        self._announce_early_arguments(call)

    def _open_shaped_call(self, call: ToolCall, shape: ClientTool) -> None:
        call.item_id = ids.new_id(ID_PREFIXES[shape.kind])
        call.delta_event = (_ARGUMENTS_DELTA if shape.kind == "function"
                            else _CUSTOM_INPUT_DELTA if shape.native_custom else None)
        call.output_index = self._add_item(call_item(shape, call.item_id, call.call_id, "", "in_progress"))
        self._announce_early_arguments(call)

    def _announce_early_arguments(self, call: ToolCall) -> None:
        # Fragments that arrived before the name was known are announced now, as one delta.
        if call.argument_pieces and call.delta_event is not None:
            self._emit({"type": call.delta_event, "item_id": call.item_id,
                        "output_index": call.output_index, "delta": call.arguments})

    def _open_streamed_tool_call(self, call: ToolCall, stream: ArgumentStream) -> None:
        if not call.call_id:
            call.call_id = ids.call_id()
        call.streamed = stream
        call.delta_event = f"response.{stream.item_type}_arguments.delta"
        tool_item = self.open_tool_item(stream.id_prefix, {**stream.fields, "arguments": ""})
        call.item_id, call.output_index = tool_item.item_id, tool_item.output_index
        self._announce_early_arguments(call)

    # -- items -------------------------------------------------------------------------------

    def _add_item(self, item: dict[str, Any]) -> int:
        output_index = len(self.response["output"])
        self.response["output"].append(item)
        self._emit({"type": "response.output_item.added", "output_index": output_index, "item": dict(item)})
        return output_index

    def _done_item(self, output_index: int, item: dict[str, Any]) -> None:
        self.response["output"][output_index] = item
        self._emit({"type": "response.output_item.done", "output_index": output_index, "item": item})

    @staticmethod
    def _reasoning_item(item_id: str, text: str, status: str = "in_progress") -> dict[str, Any]:
        return {"id": item_id, "type": "reasoning", "summary": [],
                "content": [_reasoning_part(text)] if text else [], "status": status}

    def _close_reasoning(self, status: str = "completed") -> None:
        item = self._reasoning
        if item is None:
            return
        text = "".join(item.pieces)
        self._emit({"type": "response.reasoning_text.done", "item_id": item.item_id,
                    "output_index": item.output_index, "content_index": 0, "text": text})
        self._emit({"type": "response.content_part.done", "item_id": item.item_id,
                    "output_index": item.output_index, "content_index": 0, "part": _reasoning_part(text)})
        done = self._reasoning_item(item.item_id, text, status)
        if self._seal_reasoning is not None:
            done["encrypted_content"] = self._seal_reasoning(done)
        self._done_item(item.output_index, done)
        self._reasoning = None

    def _end_message(self) -> None:
        """Close the message before the item that follows it opens, as OpenAI streams one output item
        after another; text the model writes after it opens a message of its own."""
        message = self._message
        if message is not None:
            self._close_message("completed")
            self._ended_messages.append(message)
            self._message = None

    def _close_message(self, status: str) -> None:
        message = self._message
        if message is None:
            return
        self._plain_text = None
        text_part = message.part(PartKind.TEXT)
        if self._citations is not None and text_part is not None:
            held, annotations = self._citations.flush()
            self._emit_text(message, text_part, held, [], annotations)
        for part in message.parts:
            if part.kind is PartKind.TEXT:
                self._emit({"type": "response.output_text.done", "item_id": message.item_id,
                            "output_index": message.output_index, "content_index": part.content_index,
                            "text": part.text, "logprobs": part.logprobs})
            else:
                self._emit({"type": "response.refusal.done", "item_id": message.item_id,
                            "output_index": message.output_index, "content_index": part.content_index,
                            "refusal": part.text})
            self._emit({"type": "response.content_part.done", "item_id": message.item_id,
                        "output_index": message.output_index, "content_index": part.content_index,
                        "part": _part_body(part.kind, part.text, part.logprobs, part.annotations)})
        item = {"id": message.item_id, "type": "message", "role": "assistant", "status": status,
                "content": [_part_body(p.kind, p.text, p.logprobs, p.annotations) for p in message.parts]}
        self._done_item(message.output_index, item)

    def _close_function_calls(self, status: str) -> None:
        """The upstream call ended: every call's arguments are done, in output order, and then
        the client calls still waiting open and close in turn."""
        for call in sorted(self._tool_calls.values(), key=lambda c: c.output_index or 0):
            if call.item_id is None or call.output_index is None or call.closed:
                continue
            if call.streamed is not None:
                # A server-side item stays open: the turn runs the call and closes it.
                arguments = self._done_arguments(call)
                self.response["output"][call.output_index]["arguments"] = arguments
            else:
                self._close_client_call(call, status)
        for call in self._waiting_calls:
            self._open_function_call(call)
            self._close_client_call(call, status)
        self._waiting_calls = []
        self._calls_after_server_items = [(call, self._settle_for_history(call) if raw is None else raw)
                                          for call, raw in self._calls_after_server_items]

    def _settle_for_history(self, call: ToolCall) -> str:
        """A client call whose item is added only after the server calls have run: its id and its
        arguments become now what announcing it will leave them (the turn keeps the upstream call's
        history before it runs them); returns the arguments as the model wrote them, to announce."""
        written = call.arguments
        if not call.call_id:
            call.call_id = ids.call_id()
        shape = call.shape = self._client_shapes.get(call.name)
        if shape is not None and shape.native_custom:
            call.argument_pieces = [_function_form(shape, written)]
        elif shape is None or shape.kind == "function":
            call.argument_pieces = [written or "{}"]
        return written

    def _open_calls_after_server_items(self, status: str) -> None:
        """Add and close the client calls that waited for the server-side items, once none is open
        or waiting any more."""
        if self._open_tool_items or self._waiting_server_calls:
            return
        for call, written in self._calls_after_server_items:
            call.argument_pieces = [written] if written else []
            self._open_function_call(call)
            self._close_client_call(call, status)
        self._calls_after_server_items = []

    def _close_client_call(self, call: ToolCall, status: str) -> None:
        assert call.item_id is not None and call.output_index is not None
        call.closed = True
        if self._live_call is call:
            self._live_call = None
        if call.shape is not None and call.shape.kind != "function":
            self._close_shaped_call(call, call.shape, status)
            return
        arguments = self._done_arguments(call)
        item = (_function_call_item(call, status) if call.shape is None
                else call_item(call.shape, call.item_id, call.call_id, arguments, status))
        self._done_item(call.output_index, item)

    def _done_arguments(self, call: ToolCall) -> str:
        """Announce a call's arguments as done; a call that streamed none has `{}`."""
        arguments = call.arguments or "{}"
        done_event = (call.delta_event or _ARGUMENTS_DELTA).removesuffix("delta") + "done"
        self._emit({"type": done_event, "item_id": call.item_id,
                    "output_index": call.output_index, "arguments": arguments})
        call.argument_pieces = [arguments]
        return arguments

    def _close_shaped_call(self, call: ToolCall, shape: ClientTool, status: str) -> None:
        assert call.item_id is not None and call.output_index is not None
        if shape.kind == "custom":
            text = custom_input(shape, call.arguments)
            where = {"item_id": call.item_id, "output_index": call.output_index}
            if text and call.delta_event is None:
                # Inside a JSON wrapper the input is only known whole once the call is complete.
                self._emit({"type": _CUSTOM_INPUT_DELTA, **where, "delta": text})
            self._emit({"type": "response.custom_tool_call_input.done", **where, "input": text})
        self._done_item(call.output_index, call_item(shape, call.item_id, call.call_id, call.arguments, status))
        if shape.native_custom:
            # History keeps every call in function form (`client_items.native_custom_calls`).
            call.argument_pieces = [_function_form(shape, call.arguments)]

    def add_finished_item(self, item: dict[str, Any]) -> None:
        """An item that is complete when announced (a compaction): added and done at once."""
        output_index = self._add_item(item)
        self._done_item(output_index, dict(item))

    # -- server-side tool items -----------------------------------------------------------

    def open_tool_item(self, id_prefix: str, fields: dict[str, Any]) -> ToolItem:
        """Announce a server-side tool's output item; the state machine assigns its id."""
        item_id = ids.new_id(id_prefix)
        output_index = self._add_item({"id": item_id, **fields})
        item = ToolItem(item_id=item_id, output_index=output_index, item_type=str(fields["type"]))
        self._open_tool_items[item_id] = item
        return item

    def streamed_tool_item(self, call: ToolCall) -> ToolItem | None:
        """The item opened while the model streamed this call, if it was (ArgumentStream); a call
        that waited for another's item to be done is announced now, its arguments whole."""
        if any(waiting is call for waiting in self._waiting_server_calls):
            self._open_waiting_server_call(call)
        return self._open_tool_items.get(call.item_id) if call.item_id is not None else None

    def _open_waiting_server_call(self, call: ToolCall) -> None:
        assert call.streamed is not None
        self._waiting_server_calls = [waiting for waiting in self._waiting_server_calls if waiting is not call]
        self._open_streamed_tool_call(call, call.streamed)
        assert call.output_index is not None
        self.response["output"][call.output_index]["arguments"] = self._done_arguments(call)

    def tool_phase(self, item: ToolItem, phase: str) -> None:
        """A progress event such as `response.file_search_call.searching`."""
        self._emit({"type": f"response.{item.item_type}.{phase}", "item_id": item.item_id,
                    "output_index": item.output_index})

    def close_tool_item(self, item: ToolItem, fields: dict[str, Any]) -> None:
        self._done_tool_item(item, fields)
        self._open_calls_after_server_items("completed")

    def close_tool_item_as_is(self, item: ToolItem, status: str) -> None:
        """Close a tool item as it stands, e.g. a call that will not run."""
        self.close_tool_item(item, self._as_it_stands(item, status))

    def _done_tool_item(self, item: ToolItem, fields: dict[str, Any]) -> None:
        self._open_tool_items.pop(item.item_id, None)
        self._done_item(item.output_index, {"id": item.item_id, **fields})

    def _as_it_stands(self, item: ToolItem, status: str) -> dict[str, Any]:
        fields = dict(self.response["output"][item.output_index])
        if "status" in fields:
            fields["status"] = status
        return fields

    def _close_tool_items(self, status: str) -> None:
        """The turn ended while tool items were open: close them as they stand, and the calls
        still waiting to be announced with them, server-side calls first."""
        for item in list(self._open_tool_items.values()):
            self._done_tool_item(item, self._as_it_stands(item, status))
        for call in list(self._waiting_server_calls):
            self._open_waiting_server_call(call)
            assert call.item_id is not None  # announced just now
            item = self._open_tool_items[call.item_id]
            self._done_tool_item(item, self._as_it_stands(item, status))
        self._open_calls_after_server_items(status)

    # -- ending a call and the response ----------------------------------------------------

    def finish_call(self) -> CallResult:
        """Close every item this upstream call opened, in output order, and report what it said."""
        item_status = "incomplete" if self._finish_reason == "length" else "completed"
        self._close_open_items(item_status)
        result = CallResult(
            text=self._raw_text(),
            refusal=self._part_text(PartKind.REFUSAL) or None,
            reasoning="".join(self._reasoning_pieces),
            tool_calls=[self._tool_calls[i] for i in sorted(self._tool_calls)],
            finish_reason=self._finish_reason,
            usage=self._usage,
        )
        self._begin_call()
        return result

    def _close_open_items(self, status: str) -> None:
        self._close_reasoning(status)
        self._close_message(status)
        self._close_function_calls(status)

    def _messages(self) -> list[_MessageItem]:
        return [*self._ended_messages, self._message] if self._message is not None else self._ended_messages

    def _raw_text(self) -> str:
        parts = (message.part(PartKind.TEXT) for message in self._messages())
        return "".join(part.raw_text for part in parts if part is not None)

    def _part_text(self, kind: PartKind) -> str:
        parts = (message.part(kind) for message in self._messages())
        return "".join(part.text for part in parts if part is not None)

    def complete(self, usage: dict[str, Any]) -> list[Event]:
        return self._terminal("response.completed", "completed", usage)

    def incomplete(self, reason: str, usage: dict[str, Any]) -> list[Event]:
        self.response["incomplete_details"] = {"reason": reason}
        return self._terminal("response.incomplete", "incomplete", usage)

    def fail(self, code: str, response_code: str, message: str, usage: dict[str, Any]) -> list[Event]:
        """Close what is open as incomplete, then `error` and `response.failed`.

        `code` is the detailed one for the `error` event; `response_code` is one of the codes the
        response object's `error.code` allows."""
        self._close_open_items("incomplete")
        self._close_tool_items("incomplete")
        self.response["error"] = {"code": response_code, "message": message}
        self._emit({"type": "error", "code": code, "message": message, "param": None})
        return self._terminal("response.failed", "failed", usage)

    def abandon(self, usage: dict[str, Any], failure: dict[str, Any] | None = None) -> None:
        """Nobody will read the rest: settle the object for storage without emitting anything.
        `cancelled` when the client went away; `failed` with `failure` as its error when the
        server stopped it."""
        self._close_open_items("incomplete")
        self._close_tool_items("incomplete")
        self._events.clear()
        self.response["status"] = "cancelled" if failure is None else "failed"
        if failure is not None:
            self.response["error"] = failure
        self.response["usage"] = usage

    def _terminal(self, event_type: str, status: str, usage: dict[str, Any]) -> list[Event]:
        # A call the turn did not run (the answer was cut at the output limit, or refused, while the
        # model was writing it) ends with the response, not open.
        self._close_tool_items("incomplete")
        self.response["status"] = status
        self.response["usage"] = usage
        if status == "completed":
            self.response["completed_at"] = int(time.time())
        self._emit({"type": event_type, "response": snapshot(self.response)})
        return self.drain()


def _checked(value: Any, kind: type, field: str) -> Any:
    if type(value) is not kind:
        raise _wrong_type(field, value, kind)
    return value


def _wrong_type(field: str, value: Any, kind: type) -> UpstreamError:
    expected = "a string" if kind is str else "an object"
    return UpstreamError(f"upstream sent a chunk whose {field} is {type(value).__name__}, not {expected}")


def _part_body(
    kind: PartKind, text: str, logprobs: list[dict[str, Any]], annotations: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    if kind is PartKind.TEXT:
        return {"type": "output_text", "text": text, "annotations": list(annotations or []), "logprobs": logprobs}
    return {"type": "refusal", "refusal": text}


def _reasoning_part(text: str) -> dict[str, Any]:
    return {"type": "reasoning_text", "text": text}


def _arguments_whole(call: ToolCall) -> bool:
    """Whether a call's arguments so far are a complete JSON object. A native custom tool's input
    is free text: it is whole only when the upstream call ends."""
    if call.shape is not None and call.shape.native_custom:
        return False
    arguments = call.arguments
    if not arguments.rstrip().endswith("}"):
        return False
    try:
        return isinstance(json.loads(arguments), dict)
    except ValueError:
        return False


def _function_form(shape: ClientTool, written: str) -> str:
    """A native custom call's input as history keeps it: in function form (`client_items`)."""
    return json.dumps({CUSTOM_INPUT_KEY: custom_input(shape, written)})


def _function_call_item(call: ToolCall, status: str) -> dict[str, Any]:
    return {"id": call.item_id, "type": "function_call", "call_id": call.call_id, "name": call.name,
            "arguments": call.arguments, "status": status}


def _delta_logprobs(logprobs: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not logprobs or not logprobs.get("content"):
        return []
    return [
        {"token": entry.get("token", ""), "logprob": entry.get("logprob", 0.0), "bytes": entry.get("bytes") or [],
         "top_logprobs": [{"token": t.get("token", ""), "logprob": t.get("logprob", 0.0),
                           "bytes": t.get("bytes") or []} for t in entry.get("top_logprobs") or ()]}
        for entry in logprobs["content"]
    ]
