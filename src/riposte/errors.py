"""The one exception tree. Raised deep in the code, mapped to HTTP once at the edge (api/errors.py)."""

from __future__ import annotations

from riposte.redact import redact


class RiposteError(Exception):
    """An error a client can be told about, in the OpenAI error envelope."""

    status_code = 500
    error_type = "server_error"
    default_code: str | None = None
    # Sent as `x-should-retry`, which the official SDKs obey before their own status rules;
    # None leaves the decision to the SDK.
    should_retry: bool | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code

    def envelope(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        """Extra HTTP headers the answer carries (e.g. Retry-After)."""
        return {}


class InvalidRequestError(RiposteError):
    status_code = 400
    error_type = "invalid_request_error"


class NotFoundError(RiposteError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class PreviousResponseNotFoundError(InvalidRequestError):
    """A `previous_response_id` that cannot be continued: unknown, deleted, another project's, or
    never stored. A 400 with this code, as the hosted API answers over HTTP and WebSocket alike;
    OpenAI's clients recognise the code and start the chain again with the full input."""

    default_code = "previous_response_not_found"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="previous_response_id")


class ConflictError(RiposteError):
    """The request is valid but the resource's state does not allow it (e.g. cancelling a finished response)."""

    status_code = 409
    error_type = "invalid_request_error"


class ModelNotFoundError(NotFoundError):
    default_code = "model_not_found"


# What a response the server stopped before it finished says (stored `failed`, and the 503 of a
# JSON create still waiting when the shutdown grace period ran out).
SERVER_SHUT_DOWN = "server restarted: the server shut down before this response finished"


class ShuttingDownError(RiposteError):
    """New work refused while the server drains after SIGTERM, or work cut when its grace period ran
    out; another replica can take it."""

    status_code = 503
    error_type = "server_error"
    default_code = "server_shutting_down"
    should_retry = True


class PayloadTooLargeError(RiposteError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class UpstreamError(RiposteError):
    """The chat-completions backend failed, before or during the stream."""

    status_code = 502
    error_type = "server_error"
    default_code = "upstream_error"

    def __init__(
        self, message: str, *, status_code: int | None = None, code: str | None = None, param: str | None = None,
        error_type: str | None = None,
    ) -> None:
        # Upstream text may echo the key it was sent (e.g. "Incorrect API key provided: sk-...").
        super().__init__(redact(message), param=param, code=code)
        if status_code is not None:
            self.status_code = status_code
        if error_type is not None:  # a client's mistake the backend caught (chat_stream.status_error)
            self.error_type = error_type


class ReplayMissError(RiposteError):
    """Replay mode found no recording for a request.

    A 500: the server was set up without the answer this request needs, which is neither the
    client's mistake nor transient, so it says `x-should-retry: false` and the SDKs fail at once
    instead of retrying the miss twice."""

    status_code = 500
    error_type = "server_error"
    default_code = "recording_not_found"
    should_retry = False

    def __init__(self, message: str, *, closest_recording: str | None = None) -> None:
        super().__init__(message)
        # The file name of the most similar recording, which the inspector shows side by side.
        self.closest_recording = closest_recording


class AuthenticationError(RiposteError):
    """No credentials, or credentials that do not verify (401, as OpenAI answers)."""

    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class ForbiddenRequestError(RiposteError):
    """A request refused by the browser protections (unknown Host, foreign Origin, wrong content type)."""

    status_code = 403
    error_type = "invalid_request_error"
    default_code = "forbidden"

    def __init__(self, message: str, *, status_code: int = 403, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, param=param, code=code)
        self.status_code = status_code


class RateLimitError(RiposteError):
    """A per-key limit was reached; the client may retry after `retry_after` seconds."""

    status_code = 429
    error_type = "requests"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int, param: str | None = None) -> None:
        super().__init__(f"{message} Retry after {retry_after} s.", param=param)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
