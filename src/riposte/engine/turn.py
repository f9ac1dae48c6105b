"""One Responses turn: prepare (validate, load history) before any byte is sent, then run.

`Turn.events()` is the single path for streaming and non-streaming requests alike.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field

import anyio

from riposte import ids
from riposte.engine.conversation import ConversationSync, open_conversation
from riposte.engine.items import Item, input_as_items, stored_items
from riposte.engine.request import CreateResponseRequest, reject_unsupported
from riposte.engine.response_object import ResponseObject, new_response_object
from riposte.engine.stream_state import CallResult, Event, ResponseStream
from riposte.engine.translate import Message, chat_request_body, items_to_messages, tool_call
from riposte.engine.usage import Usage, estimated_usage, usage_from_chunk
from riposte.errors import InvalidRequestError, NotFoundError, RiposteError
from riposte.inference.router import ModelRouter, Route
from riposte.store.conversations import ConversationStore
from riposte.store.responses import ResponseStore, StoredResponse

logger = logging.getLogger(__name__)

_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass
class Turn:
    request: CreateResponseRequest
    route: Route
    response: ResponseObject
    input_items: list[Item]
    conversation: list[Message]
    store: ResponseStore
    conversation_sync: ConversationSync | None = None
    failure: RiposteError | None = None
    _usage: Usage = field(default_factory=Usage)
    _last_result: CallResult | None = None
    _settled: bool = False

    @property
    def should_store(self) -> bool:
        return self.request.store is not False

    async def events(self) -> AsyncGenerator[Event]:
        stream = ResponseStream(self.response)
        try:
            for event in stream.start():
                yield event
            try:
                async for event in self._call_upstream(stream):
                    yield event
                if self.conversation_sync is not None:
                    await self.conversation_sync.append_turn(self.response["output"])
                terminal = self._settle(stream)
            except RiposteError as exc:
                terminal = self._fail(stream, exc)
            except Exception as exc:  # a bug must still end the stream and leave a stored status
                logger.exception("turn %s failed", self.response["id"])
                terminal = self._fail(stream, RiposteError(f"internal error: {type(exc).__name__}"))
            await self._persist()
            self._settled = True
            for event in terminal:
                yield event
        finally:
            if not self._settled:
                await self._persist_abandoned(stream)

    async def _call_upstream(self, stream: ResponseStream) -> AsyncGenerator[Event]:
        body = chat_request_body(
            self.request, self.route.upstream_model, self._upstream_messages(),
            max_tokens_param=self.route.provider.max_tokens_param,
        )
        async with aclosing(self.route.upstream.stream_chat(body)) as chunks:
            async for chunk in chunks:
                stream.feed(chunk)
                for event in stream.drain():
                    yield event
        result = stream.finish_call()
        for event in stream.drain():
            yield event
        self._account(result, body["messages"])
        self.conversation.append(_assistant_message(result))
        self._last_result = result

    def _upstream_messages(self) -> list[Message]:
        if self.request.instructions:
            return [{"role": "system", "content": self.request.instructions}, *self.conversation]
        return list(self.conversation)

    def _account(self, result: CallResult, sent: list[Message]) -> None:
        if result.usage:
            self._usage.add(usage_from_chunk(result.usage))
        else:
            output = result.text + (result.refusal or "") + "".join(c.arguments for c in result.tool_calls)
            self._usage.add(estimated_usage(sent, output, result.reasoning))

    def _settle(self, stream: ResponseStream) -> list[Event]:
        usage = self._usage.as_response_usage()
        finish_reason = self._last_result.finish_reason if self._last_result else None
        reason = _INCOMPLETE_REASONS.get(finish_reason or "")
        if reason is not None:
            return stream.incomplete(reason, usage)
        return stream.complete(usage)

    def _fail(self, stream: ResponseStream, error: RiposteError) -> list[Event]:
        self.failure = error
        return stream.fail(error.code or "server_error", _response_error_code(error), error.message,
                           self._usage.as_response_usage())

    async def _persist(self) -> None:
        if not self.should_store:
            await self.store.remember_unstored(self.response["id"])
            return
        await self.store.save(StoredResponse(
            response=self.response, input_items=self.input_items, messages=self.conversation,
        ))

    async def _persist_abandoned(self, stream: ResponseStream) -> None:
        """The client went away mid-stream: keep what was produced, marked as not completed."""
        stream.abandon(self._usage.as_response_usage())
        # The request's cancel scope is already cancelled; shield the write from it.
        with anyio.CancelScope(shield=True):
            try:
                await self._persist()
            except Exception:
                logger.exception("could not store abandoned response %s", self.response["id"])


def _response_error_code(error: RiposteError) -> str:
    if error.status_code == 429:
        return "rate_limit_exceeded"
    if error.status_code in (400, 413, 422):
        return "invalid_prompt"
    return "server_error"


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
) -> Turn:
    """Everything that can fail because of the request fails here, before a stream starts."""
    reject_unsupported(request)
    route = router.resolve(request.model)
    assert request.input is not None  # reject_unsupported guarantees it
    items = input_as_items(request.input)
    new_items = stored_items(items)
    previous = await _previous(request, store)
    sync = await open_conversation(request.conversation, conversations, new_items)
    history = sync.history if sync else list(previous.messages) if previous else []
    new_messages = items_to_messages(items, history)
    prior_items = previous.input_items + previous.response["output"] if previous else []
    turn = Turn(
        request=request,
        route=route,
        response=new_response_object(request, ids.response_id()),
        input_items=prior_items + new_items,
        conversation=history + new_messages,
        store=store,
        conversation_sync=sync,
    )
    if sync is not None:
        turn.response["conversation"] = {"id": sync.conversation_id}
    chat_request_body(request, route.upstream_model, [])  # validates tools, formats and choices
    return turn


async def _previous(request: CreateResponseRequest, store: ResponseStore) -> StoredResponse | None:
    if request.previous_response_id is None:
        return None
    previous = await store.get(request.previous_response_id)
    if previous is None and await store.was_unstored(request.previous_response_id):
        raise InvalidRequestError(
            f"Previous response '{request.previous_response_id}' was created with store=false, so it was not "
            "stored and cannot be continued. Store it (store=true), or send the full history as input.",
            param="previous_response_id", code="previous_response_not_stored",
        )
    if previous is None:
        raise NotFoundError(
            f"Previous response with id '{request.previous_response_id}' not found.", param="previous_response_id"
        )
    return previous
