"""One Responses turn: prepare (validate, load history) before any byte is sent, then run.

`Turn.event_batches()` is the single path for streaming and non-streaming requests alike; an SSE
response takes the same events through `Turn.relayed_event_batches()`, which lends each upstream
stream to its writer (riposte/relay.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast

import anyio
from opentelemetry.trace import Span

from riposte import ids
from riposte.engine.chat_sequence import valid_chat_sequence
from riposte.engine.client_items import native_custom_calls
from riposte.engine.compaction_items import CompactionSummary, compaction_item, expand_compactions, kept_items
from riposte.engine.context_fit import FitRequest, fit_context, upstream_messages, within_window
from riposte.engine.context_windows import ContextSettings, context_window
from riposte.engine.conversation import ConversationSync, open_conversation
from riposte.engine.encrypted_reasoning import ENCRYPTED_REASONING, open_sealed_reasoning, reasoning_sealer
from riposte.engine.input_consistency import check_calls_answered, check_item_ids_unique
from riposte.engine.item_references import ItemLookup, resolve_item_references
from riposte.engine.items import Item, input_as_items, stored_items
from riposte.engine.observed_call import ObservedCall
from riposte.engine.recent_responses import RecentResponses
from riposte.engine.request import CreateResponseRequest, reject_unsupported
from riposte.engine.response_object import ResponseObject, new_response_object
from riposte.engine.stream_state import (
    DEFAULT_MAX_OUTPUT_CHARS,
    CallResult,
    Event,
    OutputLimitReached,
    ReasoningSealer,
    ResponseStream,
    ToolCall,
)
from riposte.engine.tool_choice import ChatToolChoice, echoed_tool_choice, resolve_tool_choice
from riposte.engine.tool_models import validate_tools
from riposte.engine.translate import Message, chat_request_body, items_to_messages, tool_call
from riposte.engine.turn_tools import ToolFactory, TurnTools, additional_tools_in, build_turn_tools
from riposte.engine.turn_trace import TurnTrace, UpstreamStep
from riposte.engine.usage import Usage, estimated_usage_off_loop, usage_from_chunk
from riposte.errors import (
    SERVER_SHUT_DOWN,
    InvalidRequestError,
    PreviousResponseNotFoundError,
    RiposteError,
    UpstreamError,
)
from riposte.guardrails.guards import GuardRegistry, OutputFlagged, TurnGuard
from riposte.inference.early_start import EarlyStart
from riposte.inference.router import ModelRouter, Route
from riposte.inference.upstream import ChunkBatch
from riposte.observability.turn_observer import TurnObserver
from riposte.relay import Relay
from riposte.sealing import Keyring, new_key
from riposte.store.conversations import ConversationStore
from riposte.store.responses import NewResponse, OpenResponse, ResponseStore, StoredResponse
from riposte.tools.base import ServerTool, ToolContext, ToolRun

logger = logging.getLogger(__name__)

# Without a keyring (a turn built outside the server), sealing still works but no blob given
# back from elsewhere opens: a fresh key no one else holds.
_NO_KEYS = Keyring([new_key()])
_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
# What the turn's generators yield: a batch of events, or an upstream stream lent to the consumer.
EventBatch = list[Event] | Relay[ChunkBatch, Event]
_UNREAD_CALL = RiposteError("the turn ended before it read the upstream call sent at its start")


@dataclass(frozen=True)
class PendingCompaction:
    """A compaction the turn runs before its first model call (context_management)."""

    fit: FitRequest
    keyring: Keyring
    # How many of the compacted items the compaction item keeps verbatim.
    kept: int


@dataclass(frozen=True)
class Inheritance:
    """What a turn's history shares with the previous response's stored history."""

    extends: str | None
    items: int
    messages: int


@dataclass
class Turn:
    request: CreateResponseRequest
    route: Route
    response: ResponseObject
    input_items: list[Item]
    conversation: list[Message]
    store: ResponseStore
    observer: TurnObserver
    conversation_sync: ConversationSync | None = None
    # The previous response's input items and messages, as leading parts of `input_items` and
    # `conversation`: the stored row keeps only what follows (None: it keeps everything).
    inherited: Inheritance | None = None
    tools: TurnTools = field(default_factory=TurnTools)
    tool_choice: ChatToolChoice = field(default_factory=ChatToolChoice)
    max_infer_iters: int = 10
    seal_reasoning: ReasoningSealer | None = None
    # Called with the terminal events before the end is stored (a background worker makes them
    # durable first, so a stored end always has its terminal event stored too).
    before_end: Callable[[list[Event]], Awaitable[None]] | None = None
    # Whether the server is shutting down (SIGTERM): a turn stopped then was cut by the server.
    server_stopping: Callable[[], bool] = lambda: False
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS
    # Set while preparing when the input is over context_management's threshold: the turn
    # compacts before its first model call. `compaction` is the item it then outputs.
    pending_compaction: PendingCompaction | None = None
    compaction: Item | None = None
    # The context window fit of the turn's first call, run again before each later call.
    context_fit: FitRequest | None = None
    failure: RiposteError | None = None
    # The guardrails this turn runs; None: none apply, and nothing on the answer's path changes.
    guard: TurnGuard | None = None
    # False for a warm-up (WebSocket mode's `generate: false`): the turn's input is prepared and
    # kept, so a later turn can continue it, but the model is not called and the output is empty.
    generate: bool = True
    _refused: bool = False
    _usage: Usage = field(default_factory=Usage)
    _last_result: CallResult | None = None
    _iterations_exhausted: bool = False
    _awaiting_client: bool = False
    _server_calls_run: int = 0
    _settled: bool = False
    _created: bool = False
    _stored_row: OpenResponse | None = None
    # What the turn did upstream, for the inspector; None when not captured (engine/turn_trace.py).
    trace: TurnTrace | None = None
    # A background worker's turn continues a row written when the job was queued (see `claimed`).
    _first_sequence: int = 0
    _announce_created: bool = True
    # The first upstream call, sent while the `in_progress` row is being committed.
    _early_call: _UpstreamCall | None = None
    # Set by `relayed_event_batches`: upstream streams are lent to the consumer as a `Relay`.
    _relay_reads: bool = False

    @property
    def should_store(self) -> bool:
        return self.request.store is not False

    def claimed(self, fence: int, first_sequence: int, *, announce_created: bool = True) -> None:
        """Run as the background job claimed with `fence`: its row exists already, and the events
        stored before (the queue's, an earlier attempt's) end at `first_sequence` - 1. Without
        `announce_created` the stream starts at `response.in_progress` (the queue announced it)."""
        inherited = self.inherited or Inheritance(extends=None, items=0, messages=0)
        self._stored_row = OpenResponse(self.response["id"], inherited.extends, inherited.messages, fence)
        self._first_sequence = first_sequence
        self._announce_created = announce_created

    def event_batches(self) -> AsyncGenerator[list[Event]]:
        """The turn's events, in batches of those ready together (an upstream read's worth; a
        batch may be empty): one step of this generator chain per read, not per event."""
        return cast(AsyncGenerator[list[Event]], self._batches())  # without `_relay_reads`, never a `Relay`

    def relayed_event_batches(self) -> AsyncGenerator[EventBatch]:
        """The same, for a consumer that reads relays (riposte/relay.py): each upstream stream
        comes as a `Relay`, whose reads the consumer takes directly and turns into batches with its
        `feed`, instead of each read passing up the turn's generators (the upstream call, the model
        loop, the turn) and down again; once the relay has ended, this generator goes on."""
        self._relay_reads = True
        return self._batches()

    async def _batches(self) -> AsyncGenerator[EventBatch]:
        stream = ResponseStream(self.response, frozenset(self.tools.server), self.seal_reasoning,
                                argument_streams=self.tools.argument_streams(),
                                max_output_chars=self.max_output_chars,
                                client_shapes=self.tools.client_shapes, first_sequence=self._first_sequence)
        self.observer.started(self.conversation_sync.conversation_id if self.conversation_sync else None)
        if self.trace is not None:
            self.trace.started(stream.partial_output)
        try:
            self._early_call = self._first_call_early()
            await self._persist_created()
            yield stream.start(announce_created=self._announce_created)
            try:
                yield self._announce_listings(stream)
                async for events in self._resume_calls(stream):
                    yield events
                if self.generate and not await self._input_refused(stream):
                    yield await self._compact_first(stream)
                    async for events in self._model_loop(stream):
                        yield events
                yield stream.drain()
                if self.conversation_sync is not None:
                    await self.conversation_sync.append_turn(self.response["output"])
                terminal = self._settle(stream)
            except RiposteError as exc:
                terminal = self._fail(stream, exc)
            except Exception as exc:  # a bug must still end the stream and leave a stored status
                logger.exception("turn %s failed", self.response["id"])
                terminal = self._fail(stream, RiposteError(f"internal error: {type(exc).__name__}"))
            if self.before_end is not None:
                await self.before_end(terminal)
            await self._persist_keeping_the_answer()
            self._settled = True
            self.observer.finished(self.response["status"], self.response["usage"], self.failure)
            # The end goes out after the pass of the event loop that read it, not in its middle:
            # paced streams are read together, one pass for all the streams held to a tick, and a
            # client whose stream ended early in that pass sent its next request into the rest of
            # it (at 64 paced streams its first token came 5 ms later once the row was written on
            # the loop, which, unlike a write through the database's thread, does not suspend).
            await asyncio.sleep(0)
            yield terminal
        finally:
            if self._early_call is not None:  # the turn ended before its first call was read
                with anyio.CancelScope(shield=True):
                    await self._early_call.close()
                self.observer.upstream_failed(self._early_call.span, _UNREAD_CALL)
                if self._early_call.traced is not None:
                    self._early_call.traced.failed(self._early_call.body, _UNREAD_CALL)
            if self._created and not self._settled:
                await self._persist_abandoned(stream)
            if self.trace is not None:
                self.trace.ended()
            with anyio.CancelScope(shield=True):
                await self.tools.aclose()

    async def _compact_first(self, stream: ResponseStream) -> list[Event]:
        """The compaction decided while preparing: the model summarizes, the turn goes on from the
        summary, and the `compaction` item opens the output (engine/context_fit.py)."""
        pending = self.pending_compaction
        if pending is None:
            return []
        fitted = await fit_context(replace(pending.fit, conversation=self.conversation,
                                           watcher=ObservedCall(self.observer, self.trace)))
        self.conversation = fitted.conversation or self.conversation
        if fitted.summary_usage is not None:
            self._usage.add(fitted.summary_usage)
        if fitted.summary is not None:
            self.compaction = compaction_item(pending.keyring, CompactionSummary(fitted.summary, pending.kept))
            stream.add_finished_item(self.compaction)
        return stream.drain()

    def _announce_listings(self, stream: ResponseStream) -> list[Event]:
        """Items the tools announce before the first model call, such as `mcp_list_tools`."""
        for tool in self.tools.instances:
            for listing in tool.listings():
                item = stream.open_tool_item(listing.id_prefix, listing.pending)
                stream.tool_phase(item, "in_progress")
                stream.tool_phase(item, "failed" if listing.failed else "completed")
                stream.close_tool_item(item, listing.final)
        return stream.drain()

    async def _resume_calls(self, stream: ResponseStream) -> AsyncGenerator[EventBatch]:
        """Calls of an earlier turn that the client answered now: approved ones run, declined ones
        tell the model so; both before the first model call of this turn."""
        for tool in self.tools.instances:
            for resumed in tool.resumed_calls():
                if resumed.decision == "approved":
                    async for events in self._run_server_call(stream, tool, resumed.call, resumed=True):
                        yield events
                elif resumed.decision == "declined":
                    _insert_tool_result(self.conversation, {
                        "role": "tool", "tool_call_id": resumed.call.call_id, "content": resumed.declined_message,
                    })

    async def _model_loop(self, stream: ResponseStream) -> AsyncGenerator[EventBatch]:
        """Call the model until it answers without server-side tool calls. A client function call
        ends the turn, and so does a call that waits for the client (an approval request); the
        server's own calls run and their results go back to the model."""
        for iteration in range(self.request.max_infer_iters or self.max_infer_iters):
            async for events in self._call_upstream(stream, first=iteration == 0):
                yield events
            assert self._last_result is not None
            if self._last_result.finish_reason == "length" or self._refused:
                return  # cut at the output limit or by a guardrail: no tool call of it may run
            calls = self._last_result.tool_calls
            server_calls = [call for call in calls if call.name in self.tools.server]
            if not server_calls:
                return
            self._awaiting_client = False
            for call in server_calls:
                async for events in self._run_server_call(stream, self.tools.server[call.name], call):
                    yield events
            if len(server_calls) < len(calls) or self._awaiting_client:
                return
        self._iterations_exhausted = True

    async def _run_server_call(
        self, stream: ResponseStream, tool: ServerTool, call: ToolCall, resumed: bool = False
    ) -> AsyncGenerator[EventBatch]:
        limit = self.request.max_tool_calls
        if limit is not None and self._server_calls_run >= limit:
            self._skip_call(stream, call, limit)
            yield stream.drain()
            return
        plan = tool.plan(call)
        item = stream.streamed_tool_item(call) or stream.open_tool_item(plan.id_prefix, plan.fields)
        for phase in plan.phases:
            stream.tool_phase(item, phase)
        if plan.awaits_client:
            # The item is final as announced; the call stays in history without a result until
            # the client answers it in a later turn.
            stream.close_tool_item(item, plan.fields)
            self._awaiting_client = True
            yield stream.drain()
            return
        yield stream.drain()
        self._server_calls_run += 1
        observation = self.observer.tool_call(str(plan.fields.get("type")), call.name, call.call_id)
        traced = self.trace.tool_started(str(plan.fields.get("type")), call) if self.trace is not None else None
        run = await tool.run(call)
        observation.done(run.failed, _tool_failure_cause(run))
        if traced is not None:
            traced.done(run)
        if run.final_phase is not None:
            stream.tool_phase(item, run.final_phase)
        stream.close_tool_item(item, run.item)
        stream.cite(run.citable_files, run.citable_urls)
        yield stream.drain()
        message = _tool_result_message(call, run)
        if resumed:
            _insert_tool_result(self.conversation, message)
        else:
            self.conversation.append(message)

    def _upstream_call(self, first: bool, conversation: list[Message] | None = None) -> _UpstreamCall:
        body = chat_request_body(
            self.request, self.route.upstream_model,
            native_custom_calls(upstream_messages(self.request, conversation or self.conversation),
                                self.tools.native_custom_names),
            tools=self.tools.chat_definitions, max_tokens_param=self.route.provider.max_tokens_param,
            tool_choice=self.tool_choice, first_call=first,
            supports_verbosity=self.route.provider.supports_verbosity,
        )
        span = self.observer.upstream_call(body)
        traced = self.trace.upstream_started() if self.trace is not None else None
        source = self.route.upstream.stream_chat(body)
        if self.guard is not None:
            source = self.guard.moderated(source)
        return _UpstreamCall(body, span, traced, source)

    def _first_call_early(self) -> _UpstreamCall | None:
        """The first upstream call, sent now when the turn's row is written first (its commit
        takes time) and nothing else has to run before the call: not a background job's claimed
        row, nor a warm-up, a guarded input, a compaction, or a resumed tool call (they decide
        whether, or with which history, the model is called)."""
        if (not self.should_store or self._stored_row is not None or not self.generate or self.guard is not None
                or self.pending_compaction is not None
                or any(tool.resumed_calls() for tool in self.tools.instances)):
            return None
        try:
            call = self._upstream_call(first=True)
        except Exception:  # built again in the model loop, where its error fails the turn as usual
            return None
        call.start_early()
        return call

    async def _call_upstream(self, stream: ResponseStream, first: bool = True) -> AsyncGenerator[EventBatch]:
        if first and self._early_call is not None:
            call, self._early_call = self._early_call, None
        else:
            call = self._upstream_call(first, await self._within_window(first))
        body, span, traced = call.body, call.span, call.traced
        try:
            try:
                for source in call.sources():
                    async with aclosing(source):
                        if self._relay_reads:
                            relay = Relay(source, partial(self._fed, stream))
                            yield relay
                            relay.ended()
                        else:
                            async for batch in source:
                                yield self._fed(stream, batch)
            finally:  # at once, so a half-read connection is closed, not left to the garbage collector
                await call.close()
            if not stream.call_finished:
                raise UpstreamError("upstream stream ended without a finish_reason: the answer was cut short")
        except OutputLimitReached:
            logger.warning("response %s reached the output limit of %d characters", self.response["id"],
                           self.max_output_chars)
        except OutputFlagged as flagged:
            stream.refuse(flagged.refusal)
            self._refused = True
        except BaseException as exc:  # the client leaving (GeneratorExit) ends the span too
            self.observer.upstream_failed(span, exc)
            if traced is not None:
                traced.failed(body, exc)
            raise
        result = stream.finish_call()
        self.observer.upstream_done(span, result.finish_reason, result.usage)
        if traced is not None:
            traced.answered(body, result, self.observer.call_first_chunk_at)
        yield stream.drain()
        await self._account(result, body)
        self.conversation.append(_assistant_message(result))
        self._last_result = result

    def _fed(self, stream: ResponseStream, batch: ChunkBatch) -> list[Event]:
        """The events of an upstream read's chunks."""
        if batch:
            self.observer.chunk()
        for chunk in batch:
            try:
                stream.feed(chunk)
            except (TypeError, AttributeError, ValueError) as exc:
                raise _malformed_chunk(exc) from exc
        return stream.drain()

    async def _input_refused(self, stream: ResponseStream) -> bool:
        """The input stage: when a guardrail flags the input, the model is not called and the
        turn's answer is a refusal."""
        if self.guard is None:
            return False
        refusal = await self.guard.check_input(self.request.instructions, self.conversation)
        if refusal is None:
            return False
        stream.refuse(refusal)
        self._last_result = stream.finish_call()
        self.conversation.append(_assistant_message(self._last_result))
        self._refused = True
        return True

    def _skip_call(self, stream: ResponseStream, call: ToolCall, limit: int) -> None:
        """`max_tool_calls` is reached: the call does not run, the model hears why, and later
        model calls of the turn may not call tools any more."""
        item = stream.streamed_tool_item(call)
        if item is not None:
            stream.close_tool_item_as_is(item, "incomplete")
        self.conversation.append({"role": "tool", "tool_call_id": call.call_id,
                                  "content": f"Not run: this response may make at most {limit} tool calls."})
        self.tool_choice = ChatToolChoice(first="none", later="none", allowed_names=self.tool_choice.allowed_names)

    async def _within_window(self, first: bool) -> list[Message]:
        """What a later call sends: the tool outputs added since the first call may not fit the
        window any more. Truncation drops from what this call sends only; the stored history
        keeps everything (its row already counts the inherited messages)."""
        if first or self.context_fit is None:
            return self.conversation
        return await within_window(replace(self.context_fit, conversation=self.conversation))

    async def _account(self, result: CallResult, sent: dict[str, Any]) -> None:
        if result.usage:
            self._usage.add(usage_from_chunk(result.usage))
        else:
            output = result.text + (result.refusal or "") + "".join(c.arguments for c in result.tool_calls)
            self._usage.add(await estimated_usage_off_loop(sent["messages"], output, result.reasoning,
                                                           sent.get("tools")))

    def _settle(self, stream: ResponseStream) -> list[Event]:
        usage = self._usage.as_response_usage()
        finish_reason = self._last_result.finish_reason if self._last_result else None
        reason = _INCOMPLETE_REASONS.get(finish_reason or "")
        if self._iterations_exhausted:
            # The model kept calling tools past the iteration limit; the turn has no final answer.
            reason = "max_messages"
        if reason is not None:
            return stream.incomplete(reason, usage)
        return stream.complete(usage)

    def _fail(self, stream: ResponseStream, error: RiposteError) -> list[Event]:
        self.failure = error
        return stream.fail(error.code or "server_error", _response_error_code(error), error.message,
                           self._usage.as_response_usage())

    async def _persist_created(self) -> None:
        """Store the response `in_progress` before the client learns its id (one INSERT, in a group
        commit with the turns starting beside it). A crash from here on leaves a row that start-up
        recovery marks `failed`, never a 404. Shielded: once asked for, the row is written, so a
        client leaving meanwhile must find it marked as abandoned, not `in_progress` for ever."""
        if self._stored_row is not None:
            if not await self.store.start_background(self._stored_row, self.response):
                raise BackgroundClaimLost(self.response["id"])
        elif self.should_store:
            with anyio.CancelScope(shield=True):
                self._stored_row = await self.store.create(self.new_row(), client_waits=self.request.stream is True)
        self._created = True

    def new_row(self) -> NewResponse:
        """The response's row as its turn starts."""
        inherited = self.inherited or Inheritance(extends=None, items=0, messages=0)
        return NewResponse(response=self.response, input_items=self.input_items, extends=inherited.extends,
                           inherited_items=inherited.items, inherited_messages=inherited.messages)

    async def _persist(self) -> None:
        if not self.should_store:
            await self.store.remember_unstored(self.response["id"])
            return
        if self._stored_row is not None and not await self.store.finish(
                self._stored_row, self.response, self.conversation, self.trace.steps if self.trace else None):
            if self._stored_row.fence is None:
                logger.info("response %s was deleted while it ran; its result is not stored", self.response["id"])
            else:  # at shutdown, its job is handed back on purpose just before the turn is stopped
                logger.info("background response %s was deleted, or its job is no longer this process's (handed "
                            "back or claimed again); this run's result is not stored", self.response["id"])

    async def persist_again(self) -> None:
        """Store the ended turn once more (a background worker whose first write failed retries).
        A turn its worker stopped (a cancel) before it even marked itself started never settled nor
        counted as abandoned: it is stored `cancelled`, not left `in_progress` under an ended job."""
        if self.response["status"] in ("queued", "in_progress"):
            self.response["status"] = "cancelled"
        await self._persist()

    async def _persist_keeping_the_answer(self) -> None:
        """Store the turn; if the database refuses, the client still gets the answer.

        Everything a client sends is validated before the upstream is called, so a write that
        fails here is the database's fault (down, full, locked past its timeout), not the input's.
        The upstream has answered by now; cutting the stream or answering 500 would throw that
        answer away, so the failure is logged and the terminal event goes out as it is.
        """
        try:
            await self._persist()
        except Exception:
            logger.exception("could not store response %s; it is delivered unstored", self.response["id"])

    async def _persist_abandoned(self, stream: ResponseStream) -> None:
        """The turn was stopped before its end: keep what was produced, marked `cancelled` when
        its client went away, `failed` when the server is shutting down and its grace period ran
        out (the client did not give up; the server gave up on it)."""
        failure = {"code": "server_error", "message": SERVER_SHUT_DOWN} if self.server_stopping() else None
        stream.abandon(self._usage.as_response_usage(), failure)
        self.observer.finished(self.response["status"], self.response["usage"])
        # The request's cancel scope is already cancelled; shield the write from it.
        with anyio.CancelScope(shield=True):
            try:
                await self._persist()
            except Exception:
                logger.exception("could not store abandoned response %s", self.response["id"])


class BackgroundClaimLost(Exception):
    """The background job went to another worker (or was cancelled) before this one started it."""


@dataclass
class _UpstreamCall:
    """One chat request: its body, its observer span and inspector trace, and its stream of
    chunk batches, sent either when first read or, after `start_early`, at once."""

    body: dict[str, Any]
    span: Span
    traced: UpstreamStep | None
    stream: AsyncGenerator[ChunkBatch]
    early: EarlyStart | None = None

    def start_early(self) -> None:
        self.early = EarlyStart(self.stream)

    def sources(self) -> tuple[AsyncGenerator[ChunkBatch], ...]:
        """Where the stream's chunk batches come from, to be read one after the other: after
        `start_early`, those read early, then the stream itself."""
        return (self.stream,) if self.early is None else (self.early.kept(), self.stream)

    async def close(self) -> None:
        if self.early is not None:
            await self.early.aclose()
        else:
            await self.stream.aclose()


def _malformed_chunk(exc: Exception) -> UpstreamError:
    return UpstreamError(f"upstream sent a malformed chunk ({type(exc).__name__}: {exc})")


def _response_error_code(error: RiposteError) -> str:
    if error.status_code == 429:
        return "rate_limit_exceeded"
    if error.status_code in (400, 413, 422):
        return "invalid_prompt"
    return "server_error"


def _tool_failure_cause(run: ToolRun) -> str | None:
    content = run.tool_message_content
    return content[:500] if run.failed and isinstance(content, str) else None


def _tool_result_message(call: ToolCall, run: ToolRun) -> Message:
    return {"role": "tool", "tool_call_id": call.call_id, "content": run.tool_message_content}


def _insert_tool_result(conversation: list[Message], message: Message) -> None:
    """Place a late tool result right after the assistant message holding its call (and the
    results already there), since chat APIs want every result directly after its call."""
    call_id = message["tool_call_id"]
    for index in range(len(conversation) - 1, -1, -1):
        if any(c.get("id") == call_id for c in conversation[index].get("tool_calls") or ()):
            position = index + 1
            while position < len(conversation) and conversation[position].get("role") == "tool":
                position += 1
            conversation.insert(position, message)
            return
    conversation.append(message)


def _assistant_message(result: CallResult) -> Message:
    message: Message = {"role": "assistant", "content": result.text}
    if result.tool_calls:
        message["tool_calls"] = [tool_call(c.call_id, c.name, c.arguments or "{}") for c in result.tool_calls]
    if result.refusal:
        message["refusal"] = result.refusal
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    return message


async def prepare_turn(
    request: CreateResponseRequest, router: ModelRouter, store: ResponseStore,
    conversations: ConversationStore | None = None,
    tool_factories: Mapping[str, ToolFactory] | None = None,
    max_infer_iters: int = 10,
    keyring: Keyring | None = None,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    capture_trace: bool = False,
    recent: RecentResponses | None = None,
    guardrails: GuardRegistry | None = None,
    context_settings: ContextSettings | None = None,
    response_id: str | None = None,
) -> Turn:
    """Everything that can fail because of the request fails here, before a stream starts.
    `capture_trace`: keep the turn's upstream and tool calls for the inspector (stored turns only).
    `recent`: unstored responses the caller may continue as well (a WebSocket connection's).
    `response_id`: the id given when a background response was queued (new otherwise)."""
    reject_unsupported(request)
    guard = (guardrails or GuardRegistry.empty()).for_turn(request.guardrails, request.shields)
    route = router.resolve(request.model)
    validate_tools(request.tools or [])
    assert request.input is not None  # reject_unsupported guarantees it
    lookups: list[ItemLookup] = [store] if conversations is None else [store, conversations]
    items = input_as_items(await resolve_item_references(request.input, lookups))
    new_items = stored_items(items)
    previous = await load_previous(request.previous_response_id, store, recent)
    sync = await open_conversation(request.conversation, conversations, new_items, keyring or _NO_KEYS)
    history = sync.history if sync else list(previous.messages) if previous else []
    opened = expand_compactions(_opened(items, keyring), keyring or _NO_KEYS)
    if opened.compacted:
        history = []  # the compaction item stands for everything before it
    prior_items = previous.input_items + previous.response["output"] if previous else []
    in_context = [] if opened.compacted else prior_items if previous else list(sync.items) if sync else []
    check_item_ids_unique(in_context, items)
    check_calls_answered(in_context, opened.items)
    new_messages = items_to_messages(opened.items, history)
    context = ToolContext(includes=frozenset(request.include or ()),
                          prior_items=tuple(prior_items) if previous else sync.items if sync else (),
                          input_items=tuple(items), history=tuple(history + new_messages),
                          prior_tools=tuple(previous.response.get("tools") or ()) if previous else ())
    tools = await build_turn_tools(
        request.tools or [], tool_factories or {}, context,
        # An additional_tools item offers its tools from that item on: for the rest of a chain
        # or of a conversation.
        additional_tools_in(context.prior_items, "previous_response_id" if previous else "conversation")
        + additional_tools_in(items, "input"),
        native_grammar=route.provider.constrained_custom_tools,
    )
    inherited = Inheritance(previous.response["id"], len(prior_items), len(history)) if previous else None
    try:
        turn = _new_turn(request, route, store, sync, tools, prior_items + new_items, history + new_messages,
                         max_infer_iters, keyring, inherited, response_id)
    except BaseException:
        await tools.aclose()
        raise
    turn.max_output_chars = max_output_chars
    if capture_trace and turn.should_store:
        inherited = turn.inherited
        turn.trace = TurnTrace(turn.response, (inherited.extends, turn.conversation[:inherited.messages])
                               if inherited is not None and inherited.extends is not None else None)
    if guard is not None:
        guard.response_id = turn.response["id"]
        guard.on_check = turn.trace.guard_checked if turn.trace is not None else None
        turn.guard = guard
    try:
        await _fit_context(turn, context_settings or ContextSettings(), keyring or _NO_KEYS,
                           kept_items([*(sync.items if sync else prior_items), *new_items]))
    except BaseException:
        await tools.aclose()
        raise
    return turn


async def _fit_context(turn: Turn, settings: ContextSettings, keyring: Keyring, kept: int) -> None:
    """Truncation or the 400 now; compaction, a model call, is only decided here and runs when
    the turn starts (engine/context_fit.py)."""
    window = context_window(settings, turn.request.model, turn.route.upstream_model)
    fit = FitRequest(turn.request, turn.route, turn.conversation, turn.tools.chat_definitions, window, settings)
    fitted = await fit_context(fit, may_compact=False)
    turn.context_fit = fit
    if fitted.compaction_due:
        turn.pending_compaction = PendingCompaction(fit, keyring, kept)
        turn.inherited = None  # the stored history will be the compacted one, not the previous one's plus more
    elif fitted.conversation is not None:
        turn.conversation = fitted.conversation
        turn.inherited = None  # the stored history is no longer the previous one's plus this turn's


def _new_turn(
    request: CreateResponseRequest, route: Route, store: ResponseStore, sync: ConversationSync | None,
    tools: TurnTools, input_items: list[Item], conversation: list[Message], max_infer_iters: int,
    keyring: Keyring | None, inherited: Inheritance | None = None, response_id: str | None = None,
) -> Turn:
    tool_choice = resolve_tool_choice(request.tool_choice, list(tools.declared))
    response_id = response_id or ids.response_id()
    # A valid chat order may move a new tool message next to its call inside the inherited
    # history; the prefix check below then stores the turn in full.
    history = resume_history(valid_chat_sequence(conversation), tools.instances)
    if inherited is not None and history[:inherited.messages] != conversation[:inherited.messages]:
        inherited = None  # a resumed call changed the inherited history: store this turn's in full
    turn = Turn(
        request=request,
        route=route,
        response=new_response_object(request, response_id),
        observer=TurnObserver(response_id, request.model, route.provider.name, route.upstream_model),
        input_items=input_items,
        conversation=history,
        store=store,
        conversation_sync=sync,
        inherited=inherited,
        tools=tools,
        tool_choice=tool_choice,
        max_infer_iters=max_infer_iters,
        seal_reasoning=_sealer(request, keyring),
    )
    turn.response["tools"] = tools.echoed
    if request.tool_choice is not None:
        turn.response["tool_choice"] = echoed_tool_choice(request.tool_choice)
    if sync is not None:
        turn.response["conversation"] = {"id": sync.conversation_id}
    # Validates the other choices (text.format and the like) before any byte is sent.
    chat_request_body(request, route.upstream_model, [], tools=tools.chat_definitions, tool_choice=tool_choice)
    return turn


def _opened(items: list[Item], keyring: Keyring | None) -> list[Item]:
    return open_sealed_reasoning(items, keyring or _NO_KEYS)


def _sealer(request: CreateResponseRequest, keyring: Keyring | None) -> ReasoningSealer | None:
    if ENCRYPTED_REASONING not in (request.include or ()):
        return None
    return reasoning_sealer(keyring or _NO_KEYS)


def resume_history(conversation: list[Message], tools: tuple[ServerTool, ...]) -> list[Message]:
    """History with the calls this turn resumes in place: a resumed call the history lacks (the
    client sent the earlier items itself) is added as the model's call; a call left waiting that
    nobody answered is taken out, since a call without a result is not valid history."""
    messages = list(conversation)
    present = {c.get("id") for m in messages for c in m.get("tool_calls") or ()}
    for tool in tools:
        for resumed in tool.resumed_calls():
            call = resumed.call
            if resumed.decision == "unanswered":
                messages = _without_call(messages, call.call_id)
            elif call.call_id not in present:
                messages.append({"role": "assistant", "content": "",
                                 "tool_calls": [tool_call(call.call_id, call.name, call.arguments)]})
    return messages


def _without_call(messages: list[Message], call_id: str) -> list[Message]:
    kept: list[Message] = []
    for message in messages:
        calls = message.get("tool_calls")
        if calls and any(c.get("id") == call_id for c in calls):
            remaining = [c for c in calls if c.get("id") != call_id]
            message = {**message, "tool_calls": remaining} if remaining else {
                k: v for k, v in message.items() if k != "tool_calls"}
            if not remaining and not message.get("content"):
                continue
        kept.append(message)
    return kept


async def load_previous(
    previous_response_id: str | None, store: ResponseStore, recent: RecentResponses | None = None
) -> StoredResponse | None:
    """The stored response a turn continues, or a 400 naming `previous_response_id`. `recent`:
    unstored responses the caller may continue as well (a WebSocket connection's)."""
    if previous_response_id is None:
        return None
    remembered = recent.recall(previous_response_id) if recent is not None else None
    if remembered is not None:
        return remembered
    previous = await store.get(previous_response_id)
    if previous is None and await store.was_unstored(previous_response_id):
        raise PreviousResponseNotFoundError(
            f"Previous response '{previous_response_id}' was created with store=false, so it was not "
            "stored and cannot be continued. Store it (store=true), or send the full history as input.")
    if previous is None:
        raise PreviousResponseNotFoundError(f"Previous response with id '{previous_response_id}' not found.")
    if previous.response["status"] in ("queued", "in_progress"):
        raise InvalidRequestError(
            f"Previous response '{previous_response_id}' is still in progress; continue it once it has "
            "ended.", param="previous_response_id", code="previous_response_in_progress",
        )
    return previous
