"""Validator for the grammar of a Responses API event stream.

A Responses stream is only useful to clients (the official SDKs' stream
accumulators, the Agents SDK, Codex, ...) if it follows the shape OpenAI emits:
lifecycle events around properly nested output items and content parts, deltas
that add up to their ``.done`` events, and a terminal response that agrees with
everything streamed before it. Clients rarely validate this; they silently
build wrong state instead. This module checks a recorded stream so tests -- ours
and our users' -- fail loudly instead.

Events may be the SDK's pydantic event objects or plain dicts from raw SSE.

Example::

    events = list(client.responses.create(model=..., input=..., stream=True))
    assert_valid_stream(events)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel
from typing_extensions import TypeIs

__all__ = ["TERMINAL_EVENT_TYPES", "assert_valid_stream", "stream_grammar_errors"]

Event = Mapping[str, Any]

TERMINAL_EVENT_TYPES: Final = frozenset({"response.completed", "response.incomplete", "response.failed"})
_LIFECYCLE_TYPES: Final = TERMINAL_EVENT_TYPES | {"response.created", "response.in_progress", "response.queued"}
_PART_ADDED: Final = {"response.content_part.added": "content", "response.reasoning_summary_part.added": "summary"}
_PART_DONE: Final = {"response.content_part.done": "content", "response.reasoning_summary_part.done": "summary"}
# Which index field addresses a part of each family, and which item field lists those parts.
_INDEX_FIELD: Final = {"content": "content_index", "summary": "summary_index"}
_ITEM_LIST_FIELD: Final = {"content": "content", "summary": "summary"}
# Item fields that identify what the item is; they may not change between added and done.
_STABLE_ITEM_FIELDS: Final = ("type", "role", "call_id", "name", "server_label", "namespace")
# Items whose text stream always ends with its .done event before the item is done, even when
# nothing was streamed (OpenAI sends `response.custom_tool_call_input.done` for every custom call).
_ITEMS_WITH_REQUIRED_DONE_TEXT: Final = frozenset({"custom_tool_call"})
# Events that address their item by output_index alone, and the item type they belong to.
_INDEXED_ITEM_EVENTS: Final = {"response.shell_call_command": "shell_call"}
# Item types whose wire form has no `status` (the MCP listing and approval items).
_STATUSLESS_ITEM_TYPES: Final = frozenset({
    "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "compaction",
})
# Progress events of server-side tool items: `response.<item type>.<phase>`, only while the item is open.
_TOOL_PHASES: Final = {
    "mcp_list_tools": ("in_progress", "completed", "failed"),
    "mcp_call": ("in_progress", "completed", "failed"),
    "file_search_call": ("in_progress", "searching", "completed"),
    "web_search_call": ("in_progress", "searching", "completed"),
}
_TOOL_PHASE_EVENTS: Final = {
    f"response.{item_type}.{phase}": item_type for item_type, phases in _TOOL_PHASES.items() for phase in phases
}


@dataclass(frozen=True)
class _TextStream:
    """A ``<prefix>.delta`` / ``<prefix>.done`` pair whose done event repeats the joined deltas."""

    target_type: str  # type of the part (or item) the text belongs to
    done_field: str  # field of the .done event, and of the part/item, holding the full text
    family: str | None  # part family, or None for a stream on the item itself


_TEXT_STREAMS: Final = {
    "response.output_text": _TextStream("output_text", "text", "content"),
    "response.refusal": _TextStream("refusal", "refusal", "content"),
    "response.reasoning_text": _TextStream("reasoning_text", "text", "content"),
    "response.reasoning_summary_text": _TextStream("summary_text", "text", "summary"),
    "response.function_call_arguments": _TextStream("function_call", "arguments", None),
    "response.custom_tool_call_input": _TextStream("custom_tool_call", "input", None),
    "response.mcp_call_arguments": _TextStream("mcp_call", "arguments", None),
    "response.code_interpreter_call_code": _TextStream("code_interpreter_call", "code", None),
}


# Phases come in the order above (one may be skipped, none repeated or reversed). A search call
# closed as completed has announced `.completed` first; a failed search simply stops announcing.
_COMPLETION_ANNOUNCED: Final = frozenset({"file_search_call", "web_search_call"})


def stream_grammar_errors(events: Sequence[object]) -> list[str]:
    """Every grammar violation found in ``events``, in stream order; empty when valid."""
    return _Checker([_as_mapping(e) for e in events]).run()


def assert_valid_stream(events: Sequence[object]) -> None:
    """Raise AssertionError listing all grammar violations, if there are any."""
    errors = stream_grammar_errors(events)
    if errors:
        listing = "\n".join(f"  - {e}" for e in errors)
        raise AssertionError(f"invalid Responses event stream ({len(errors)} errors):\n{listing}")


def _as_mapping(event: object) -> Event | None:
    if isinstance(event, BaseModel):
        # warnings=False: SDK unions may hold raw dicts for unknown shapes; that's not our concern.
        return event.model_dump(warnings=False)
    if isinstance(event, Mapping):
        return event
    return None


# --------------------------------------------------------------------------- state


@dataclass
class _Part:
    type: str
    deltas: list[str] = field(default_factory=list)
    done_text: str | None = None
    closed: bool = False


@dataclass
class _Item:
    id: str
    output_index: int
    type: str
    added: Event
    done: Event | None = None
    parts: dict[tuple[str, int], _Part] = field(default_factory=dict)
    deltas: list[str] = field(default_factory=list)  # item-level stream, e.g. function arguments
    done_text: str | None = None
    phases: list[str] = field(default_factory=list)  # tool progress phases announced so far

    def parts_of(self, family: str) -> dict[int, _Part]:
        return {index: part for (fam, index), part in self.parts.items() if fam == family}


class _Checker:
    """Walks the stream once, keeping the open items/parts, collecting errors."""

    def __init__(self, events: list[Event | None]) -> None:
        self.events = events
        self.errors: list[str] = []
        self.items: dict[str, _Item] = {}
        self.by_index: dict[int, _Item] = {}
        self.order: list[str] = []  # item ids in order of addition
        self.open_items: dict[str, _Item] = {}  # added and not yet done

    def run(self) -> list[str]:
        if not self.events:
            return ["stream is empty"]
        for position, event in enumerate(self.events):
            if event is None:
                self.errors.append(f"event {position}: not a dict or pydantic model")
        events = [(i, e) for i, e in enumerate(self.events) if e is not None]
        if not events:
            return self.errors
        self._check_sequence_numbers(events)
        self._check_lifecycle(events)
        for position, event in events:
            self._visit(position, event)
        self._check_items_closed()
        for position, event in events:
            if _kind(event) in TERMINAL_EVENT_TYPES:
                self._check_final_response(position, event)
        return self.errors

    def _error(self, position: int, event: Event, message: str) -> None:
        self.errors.append(f"event {position} ({event.get('type')}, seq {event.get('sequence_number')}): {message}")

    # ----------------------------------------------------------------- whole-stream checks

    def _check_sequence_numbers(self, events: list[tuple[int, Event]]) -> None:
        # Consecutive, not merely increasing: a gap means an event was lost.
        expected = 0
        for position, event in events:
            number = event.get("sequence_number")
            if not _is_index(number):
                self._error(position, event, "sequence_number missing or not an int")
                continue
            if number != expected:
                self._error(position, event, f"sequence_number should be {expected}")
            expected = number + 1

    def _check_lifecycle(self, events: list[tuple[int, Event]]) -> None:
        self._check_opening(events)
        self._check_terminal(events)
        self._check_error_events(events)
        self._check_response_ids(events)

    def _check_opening(self, events: list[tuple[int, Event]]) -> None:
        """`response.created` then `response.in_progress`; a queued background response has
        `response.queued` between them, and both of the first two carry status queued."""
        first_position, first = events[0]
        queued = len(events) > 1 and _kind(events[1][1]) == "response.queued"
        opening_status = "queued" if queued else "in_progress"
        if _kind(first) != "response.created":
            self._error(first_position, first, "first event must be response.created")
        elif _response_of(first).get("status") != opening_status:
            self._error(first_position, first, f"response.created must carry status {opening_status}")
        if queued and _response_of(events[1][1]).get("status") != "queued":
            self._error(*events[1], "response.queued must carry status queued")
        progress = 2 if queued else 1
        if len(events) <= progress or _kind(events[progress][1]) != "response.in_progress":
            self.errors.append(f"{'third' if queued else 'second'} event must be response.in_progress")
        elif _response_of(events[progress][1]).get("status") != "in_progress":
            self._error(*events[progress], "response.in_progress must carry status in_progress")
        for kind in ("response.created", "response.queued", "response.in_progress"):
            for position, event in [(p, e) for p, e in events if _kind(e) == kind][1:]:
                self._error(position, event, f"{kind} sent more than once")

    def _check_terminal(self, events: list[tuple[int, Event]]) -> None:
        terminals = [(p, e) for p, e in events if _kind(e) in TERMINAL_EVENT_TYPES]
        if not terminals:
            self.errors.append("no terminal event (response.completed / incomplete / failed)")
            return
        for position, event in terminals[1:]:
            self._error(position, event, "second terminal event; there must be exactly one")
        last_position = events[-1][0]
        for position, event in terminals:
            if position != last_position:
                self._error(position, event, "terminal event is not the last event")
            expected_status = str(_kind(event)).removeprefix("response.")
            if _response_of(event).get("status") != expected_status:
                self._error(position, event, f"terminal response status should be {expected_status!r}")

    def _check_error_events(self, events: list[tuple[int, Event]]) -> None:
        # OpenAI may precede response.failed with an `error` event; nowhere else.
        for index, (position, event) in enumerate(events):
            if _kind(event) != "error":
                continue
            is_second_to_last = index == len(events) - 2
            if not (is_second_to_last and _kind(events[-1][1]) == "response.failed"):
                self._error(position, event, "an error event may only come right before response.failed")

    def _check_response_ids(self, events: list[tuple[int, Event]]) -> None:
        lifecycle = [(p, e) for p, e in events if _kind(e) in _LIFECYCLE_TYPES]
        if not lifecycle:
            return
        first_id = _response_of(lifecycle[0][1]).get("id")
        if not isinstance(first_id, str) or not first_id:
            self._error(*lifecycle[0], "response has no id")
        for position, event in lifecycle[1:]:
            if _response_of(event).get("id") != first_id:
                self._error(position, event, f"response id differs from the first one ({first_id!r})")

    def _check_items_closed(self) -> None:
        for item_id in self.order:
            if self.items[item_id].done is None:
                self.errors.append(f"item {item_id!r} was added but never done")

    # ----------------------------------------------------------------- per-event dispatch

    def _visit(self, position: int, event: Event) -> None:
        kind = _kind(event)
        if kind is None:
            self._error(position, event, "event has no type")
        elif kind == "response.output_item.added":
            self._on_item_added(position, event)
        elif kind == "response.output_item.done":
            self._on_item_done(position, event)
        elif kind in _PART_ADDED:
            self._on_part_added(position, event, _PART_ADDED[kind])
        elif kind in _PART_DONE:
            self._on_part_done(position, event, _PART_DONE[kind])
        else:
            self._on_other(position, event, kind)

    def _on_other(self, position: int, event: Event, kind: str) -> None:
        """Deltas, .done texts, annotations and anything future: they may only touch open things."""
        prefix, _, suffix = kind.rpartition(".")
        stream = _TEXT_STREAMS.get(prefix) if suffix in ("delta", "done") else None
        if stream is not None and "item_id" not in event:
            self._error(position, event, "item_id missing")
        item = self._open_item(position, event)
        if item is None:
            return
        phase_of = _TOOL_PHASE_EVENTS.get(kind) or _INDEXED_ITEM_EVENTS.get(prefix)
        if phase_of is not None and kind not in _TOOL_PHASE_EVENTS:
            if item.type != phase_of:
                self._error(position, event, f"targets a {item.type!r} item, expected {phase_of!r}")
            return
        if phase_of is not None:
            if item.type != phase_of:
                self._error(position, event, f"targets a {item.type!r} item, expected {phase_of!r}")
            if "item_id" not in event or "output_index" not in event:
                self._error(position, event, "a tool progress event needs item_id and output_index")
            self._on_tool_phase(position, event, item, phase_of, suffix)
            return
        if prefix.removeprefix("response.") in _TOOL_PHASES and stream is None:
            self._error(position, event, f"unknown phase {suffix!r} of {prefix}")
            return
        parts = {fam: self._open_part(position, event, item, fam) for fam, key in _INDEX_FIELD.items() if key in event}
        if stream is None:
            return
        if stream.family is None:
            self._on_item_text(position, event, item, stream, suffix)
        elif stream.family not in parts:
            self._error(position, event, f"{_INDEX_FIELD[stream.family]} missing")
        elif (part := parts[stream.family]) is not None:
            self._on_part_text(position, event, part, stream, suffix)

    def _on_tool_phase(self, position: int, event: Event, item: _Item, item_type: str, phase: str) -> None:
        phases = _TOOL_PHASES[item_type]
        if item.phases and phases.index(phase) <= phases.index(item.phases[-1]):
            self._error(position, event, f"phase {phase!r} comes after {item.phases[-1]!r}")
        else:
            item.phases.append(phase)

    def _check_tool_completed(self, position: int, event: Event, state: _Item, item: Mapping[str, Any]) -> None:
        announced = "completed" in state.phases
        if state.type in _COMPLETION_ANNOUNCED and item.get("status") == "completed" and not announced:
            self._error(position, event, f"item {state.id!r} is completed but no response.{state.type}.completed "
                                         "was sent")

    # ----------------------------------------------------------------- items

    def _on_item_added(self, position: int, event: Event) -> None:
        item = self._event_item(position, event)
        if item is None:
            return
        item_id: str = item["id"]
        if item_id in self.items:
            self._error(position, event, f"item id {item_id!r} added twice")
            return
        output_index = event.get("output_index")
        if not _is_index(output_index) or output_index != len(self.order):
            self._error(position, event, f"output_index should be {len(self.order)}, got {output_index!r}")
        index = output_index if _is_index(output_index) else len(self.order)
        if item.get("status") not in (None, "", "in_progress"):
            self._error(position, event, f"an added item should be in_progress, not {item.get('status')!r}")
        # OpenAI writes output one item after another: each item, a server-side call too (open while
        # it runs), is done before the next is added; clients that track one current item rely on it.
        for open_item in self.open_items.values():
            self._error(position, event, f"item added while {open_item.type} item {open_item.id!r} is still open")
        state = _Item(id=item_id, output_index=index, type=str(item.get("type")), added=item)
        self.items[item_id] = state
        self.open_items[item_id] = state
        self.by_index[index] = state
        self.order.append(item_id)

    def _event_item(self, position: int, event: Event) -> Mapping[str, Any] | None:
        """The event's item if it can be tracked (it has an id); a missing status is reported only."""
        item = event.get("item")
        if not isinstance(item, Mapping):
            self._error(position, event, "event has no item")
            return None
        if not item.get("status") and item.get("type") not in _STATUSLESS_ITEM_TYPES:
            self._error(position, event, "item has no status")
        if not isinstance(item.get("id"), str) or not item["id"]:
            self._error(position, event, "item has no id")
            return None
        return item

    def _on_item_done(self, position: int, event: Event) -> None:
        item = self._event_item(position, event)
        if item is None:
            return
        state = self.items.get(item["id"])
        if state is None:
            self._error(position, event, f"item {item['id']!r} is done but was never added")
            return
        if state.done is not None:
            self._error(position, event, f"item {state.id!r} is done twice")
            return
        if not _same_index(event.get("output_index"), state.output_index):
            self._error(position, event, f"output_index should be {state.output_index}")
        changed = [key for key in _STABLE_ITEM_FIELDS if item.get(key) != state.added.get(key)]
        if changed:
            self._error(position, event, f"item fields {changed} differ from output_item.added")
        if item.get("status") == "in_progress":
            self._error(position, event, "a done item cannot be in_progress")
        self._check_parts_closed(position, event, state)
        self._check_done_item_text(position, event, state, item)
        self._check_tool_completed(position, event, state, item)
        state.done = item
        self.open_items.pop(state.id, None)

    def _check_parts_closed(self, position: int, event: Event, state: _Item) -> None:
        for (family, index), part in state.parts.items():
            if not part.closed:
                self._error(position, event, f"{family} part {index} of item {state.id!r} is still open")

    def _check_done_item_text(self, position: int, event: Event, state: _Item, item: Mapping[str, Any]) -> None:
        """The done item must hold exactly what was streamed for it."""
        item_stream = next(
            (s for s in _TEXT_STREAMS.values() if s.family is None and s.target_type == state.type), None
        )
        if state.type in _ITEMS_WITH_REQUIRED_DONE_TEXT and state.done_text is None:
            self._error(position, event, f"{state.type} item done without its .done text event")
        elif item_stream is not None and (state.deltas or state.done_text is not None):
            if state.done_text is None:
                self._error(position, event, f"deltas streamed but no {state.type} .done event")
            elif item.get(item_stream.done_field) != state.done_text:
                self._error(position, event, f"item {item_stream.done_field} differs from the streamed .done")
        for family, list_field in _ITEM_LIST_FIELD.items():
            self._check_done_item_parts(position, event, state, item.get(list_field), family)

    def _check_done_item_parts(self, position: int, event: Event, state: _Item, final_parts: Any, family: str) -> None:
        streamed = state.parts_of(family)
        if not streamed and state.type != "message":
            return  # e.g. reasoning summaries may arrive only in the done item
        count = len(final_parts) if isinstance(final_parts, list) else 0
        if count != len(streamed) and (family == "content" or streamed):
            self._error(position, event, f"item has {count} {family} parts but {len(streamed)} were streamed")
            return
        for index, part in sorted(streamed.items()):
            final = final_parts[index] if isinstance(final_parts, list) and index < len(final_parts) else None
            if not isinstance(final, Mapping) or final.get("type") != part.type:
                self._error(position, event, f"{family} part {index} type differs from the streamed part")
            elif part.done_text is not None and _part_text(final) != part.done_text:
                self._error(position, event, f"{family} part {index} text differs from the streamed text")

    def _open_item(self, position: int, event: Event) -> _Item | None:
        """The open item an event refers to via item_id and/or output_index, else None (+ error)."""
        item_id = event.get("item_id")
        output_index = event.get("output_index")
        if "item_id" not in event and "output_index" not in event:
            return None
        if "item_id" in event and (not isinstance(item_id, str) or not item_id):
            self._error(position, event, f"item_id {item_id!r} is not a non-empty string")
            return None
        if isinstance(item_id, str):
            state = self.items.get(item_id)
            reference = f"item {item_id!r}"
        else:  # only output_index: e.g. shell_call_command events carry no item_id
            state = self.by_index.get(output_index) if _is_index(output_index) else None
            reference = f"output_index {output_index!r}"
        if state is None:
            self._error(position, event, f"refers to {reference}, which was never added")
            return None
        if state.done is not None:
            self._error(position, event, f"refers to {reference}, which is already done")
            return None
        if "output_index" in event and not _same_index(output_index, state.output_index):
            self._error(position, event, f"output_index should be {state.output_index} for item {state.id!r}")
        return state

    # ----------------------------------------------------------------- parts

    def _on_part_added(self, position: int, event: Event, family: str) -> None:
        item = self._open_item(position, event)
        if item is None:
            return
        index = event.get(_INDEX_FIELD[family])
        if not _is_index(index):
            self._error(position, event, f"{_INDEX_FIELD[family]} missing")
            return
        if (family, index) in item.parts:
            self._error(position, event, f"{family} part {index} added twice")
            return
        expected = len(item.parts_of(family))
        if index != expected:
            self._error(position, event, f"{_INDEX_FIELD[family]} should be {expected}")
        part = event.get("part")
        part_type = part.get("type") if isinstance(part, Mapping) else None
        if not isinstance(part_type, str):
            self._error(position, event, "part has no type")
        item.parts[(family, index)] = _Part(type=str(part_type))

    def _on_part_done(self, position: int, event: Event, family: str) -> None:
        item = self._open_item(position, event)
        if item is None:
            return
        part = self._open_part(position, event, item, family)
        if part is None:
            return
        final = event.get("part")
        if not isinstance(final, Mapping) or final.get("type") != part.type:
            self._error(position, event, f"part type differs from the added {part.type!r} part")
        stream = _stream_for_part(part.type)
        if stream is not None:
            if part.done_text is None:
                self._error(position, event, f"{part.type} part closed without its .done text event")
            elif isinstance(final, Mapping) and final.get(stream.done_field) != part.done_text:
                self._error(position, event, f"part {stream.done_field} differs from the streamed .done text")
        part.closed = True

    def _open_part(self, position: int, event: Event, item: _Item, family: str) -> _Part | None:
        index = event.get(_INDEX_FIELD[family])
        part = item.parts.get((family, index)) if _is_index(index) else None
        if part is None:
            self._error(position, event, f"refers to {family} part {index!r} of item {item.id!r}, never added")
            return None
        if part.closed:
            self._error(position, event, f"refers to {family} part {index} of item {item.id!r}, already done")
            return None
        return part

    # ----------------------------------------------------------------- text streams

    def _on_part_text(self, position: int, event: Event, part: _Part, stream: _TextStream, suffix: str) -> None:
        if part.type != stream.target_type:
            self._error(position, event, f"targets a {part.type!r} part, expected {stream.target_type!r}")
            return
        self._accumulate(position, event, part.deltas, part.done_text, stream, suffix)
        if suffix == "done":
            part.done_text = _str_or_none(event.get(stream.done_field))

    def _on_item_text(self, position: int, event: Event, item: _Item, stream: _TextStream, suffix: str) -> None:
        if item.type != stream.target_type:
            self._error(position, event, f"targets a {item.type!r} item, expected {stream.target_type!r}")
            return
        self._accumulate(position, event, item.deltas, item.done_text, stream, suffix)
        if suffix == "done":
            item.done_text = _str_or_none(event.get(stream.done_field))

    def _accumulate(
        self,
        position: int,
        event: Event,
        deltas: list[str],
        done_text: str | None,
        stream: _TextStream,
        suffix: str,
    ) -> None:
        if done_text is not None:
            self._error(position, event, "text event after its .done event")
        if suffix == "delta":
            delta = event.get("delta")
            if not isinstance(delta, str):
                self._error(position, event, "delta is not a string")
            else:
                deltas.append(delta)
        elif event.get(stream.done_field) != "".join(deltas):
            self._error(position, event, f"{stream.done_field} is not the concatenation of the deltas")

    # ----------------------------------------------------------------- terminal response

    def _check_final_response(self, position: int, event: Event) -> None:
        output = _response_of(event).get("output")
        if not isinstance(output, list):
            self._error(position, event, "terminal response has no output list")
            return
        final_ids = [o.get("id") if isinstance(o, Mapping) else None for o in output]
        if final_ids != self.order:
            self._error(position, event, f"response.output ids {final_ids} != streamed items {self.order}")
        for final, final_id in zip(output, final_ids, strict=True):
            state = self.items.get(final_id) if isinstance(final_id, str) else None
            if state is None or state.done is None:
                continue
            differences = _differences(_fingerprint(state.done), _fingerprint(final))
            if differences:
                self._error(position, event, f"item {state.id!r} differs from its output_item.done in {differences}")


# --------------------------------------------------------------------------- helpers


def _is_index(value: object) -> TypeIs[int]:
    # bool is an int subclass, but True is no sequence number or index.
    return isinstance(value, int) and not isinstance(value, bool)


def _same_index(value: object, expected: int) -> bool:
    return _is_index(value) and value == expected


def _kind(event: Event) -> str | None:
    """The event type, or None when missing or malformed (so set lookups cannot crash)."""
    kind = event.get("type")
    return kind if isinstance(kind, str) else None


def _response_of(event: Event) -> Mapping[str, Any]:
    response = event.get("response")
    return response if isinstance(response, Mapping) else {}


def _stream_for_part(part_type: str) -> _TextStream | None:
    return next((s for s in _TEXT_STREAMS.values() if s.family and s.target_type == part_type), None)


def _part_text(part: Mapping[str, Any]) -> Any:
    stream = _stream_for_part(str(part.get("type")))
    return part.get(stream.done_field) if stream else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _fingerprint(item: Mapping[str, Any]) -> dict[str, Any]:
    """What must not change between output_item.done and the terminal response.

    Annotations are left out on purpose: servers may attach citations only in
    the final response.
    """
    fingerprint = {key: item.get(key) for key in ("id", "type", "status")}
    for key in ("name", "call_id", "arguments", "input", "code"):
        if key in item:
            fingerprint[key] = item[key]
    for list_field in _ITEM_LIST_FIELD.values():
        parts = item.get(list_field)
        if isinstance(parts, list):
            fingerprint[list_field] = [(p.get("type"), _part_text(p)) if isinstance(p, Mapping) else p for p in parts]
    return fingerprint


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return sorted(key for key in a.keys() | b.keys() if a.get(key) != b.get(key))
