"""The validated form of a `POST /v1/responses` body."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import TypedDict

from riposte.engine.request_fields import reject_unsupported_fields
from riposte.errors import InvalidRequestError
from riposte.metadata import metadata_within_limits
from riposte.param_path import printable

# Logprobs come whenever top_logprobs asks for them; file_search results and web_search sources
# need their include; input image URLs are always stored and listed with the input items.
SUPPORTED_INCLUDES: frozenset[str] = frozenset({
    "file_search_call.results", "message.input_image.image_url", "message.output_text.logprobs",
    "reasoning.encrypted_content", "web_search_call.action.sources",
})

MAX_MODEL_LENGTH = 256

# The SDK's `ReasoningEffort`; what a backend does with each is the backend's business.
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
ServiceTier = Literal["auto", "default", "flex", "scale", "priority", "fast", "ultrafast"]


class ReasoningParam(TypedDict, total=False):
    """`reasoning`: every key the SDK defines; an unknown one is a 400 naming it."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    effort: ReasoningEffort | None
    summary: Literal["auto", "concise", "detailed"] | None
    generate_summary: Literal["auto", "concise", "detailed"] | None  # deprecated spelling of summary
    # Which earlier reasoning goes back to the model: see engine/reasoning_context.py.
    context: Literal["auto", "current_turn", "all_turns"] | None
    # Only the standard execution mode exists here; "pro" is rejected in reject_unsupported.
    mode: str


class TextParam(TypedDict, total=False):
    """`text`: the output format and verbosity; an unknown key is a 400 naming it."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    format: dict[str, Any] | None
    verbosity: Literal["low", "medium", "high"] | None


class CreateResponseRequest(BaseModel):
    """Every field of the OpenAI create-response params. Unknown fields are rejected, not ignored,
    and types are strict: `"stream": "yes"` is a 400, not a true."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # Stored in responses.model (VARCHAR(300)); checked here so both databases agree.
    model: Annotated[str, Field(min_length=1, max_length=MAX_MODEL_LENGTH), printable]
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: Annotated[str, printable] | None = None
    conversation: str | dict[str, Any] | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    background: bool | None = None
    metadata: dict[str, str] | None = None
    # Client bookkeeping (Codex sends its session and installation ids here): stored and echoed.
    client_metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: ServiceTier | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_output_tokens: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=1)
    parallel_tool_calls: bool | None = None
    tool_choice: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    text: TextParam | None = None
    reasoning: ReasoningParam | None = None
    truncation: Literal["auto", "disabled"] | None = None
    include: list[str] | None = None
    prompt: dict[str, Any] | None = None
    context_management: list[dict[str, Any]] | None = None
    moderation: Any = None
    image: Any = None
    access_programs: Any = None
    background_options: Any = None
    prompt_cache_options: Any = None
    # Extension: how many upstream calls one turn may make before it is cut short.
    max_infer_iters: int | None = Field(default=None, ge=1, le=100)
    # Extension: guardrails this turn runs, by name or as {"type": name}; `shields` is the seed
    # system's extra-body spelling of the same.
    guardrails: list[str | dict[str, Any]] | None = None
    shields: list[str | dict[str, Any]] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return metadata_within_limits(value)


def reject_unsupported(request: CreateResponseRequest) -> None:
    """Fields this server cannot honour yet get a 400 naming them, never silent acceptance."""
    for index, include in enumerate(request.include or []):
        if include not in SUPPORTED_INCLUDES:
            raise InvalidRequestError(
                f"include value '{include}' is not supported by this server.",
                param=f"include[{index}]",
                code="unsupported_value",
            )
    if request.background and request.store is False:
        raise InvalidRequestError("background responses must be stored: store cannot be false with background.",
                                  param="store", code="unsupported_value")
    if request.conversation is not None and request.previous_response_id is not None:
        raise InvalidRequestError(
            "'conversation' and 'previous_response_id' are mutually exclusive: a turn continues either a "
            "conversation or a response chain. Provide only one of them.",
            param="conversation", code="mutually_exclusive_parameters",
        )
    reject_unsupported_fields({name for name in request.model_fields_set if getattr(request, name) is not None})
    if (request.reasoning or {}).get("mode", "standard") != "standard":
        raise InvalidRequestError("Only reasoning mode 'standard' is supported by this server.",
                                  param="reasoning.mode", code="unsupported_value")
    if request.input is None:
        raise InvalidRequestError("Missing required parameter: 'input'.", param="input",
                                  code="missing_required_parameter")
    if request.stream_options and not request.stream:
        raise InvalidRequestError("stream_options is only allowed when stream is true.", param="stream_options")
