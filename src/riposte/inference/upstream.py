"""The seam between Riposte and a chat-completions backend."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

CHAT_ENDPOINT = "/v1/chat/completions"
EMBEDDINGS_ENDPOINT = "/v1/embeddings"
MODERATIONS_ENDPOINT = "/v1/moderations"

JSON = dict[str, Any]
# The chunks of a streamed chat completion that arrived together (one socket read). They travel
# through the turn as one step: each step of an async generator chain costs more than the state
# machine's work on a chunk, and a paced model's read carries several tokens (bench/RESULTS.md).
ChunkBatch = list[JSON]


class Upstream(Protocol):
    """What the engine needs from a backend. Chunks and bodies are plain JSON dicts.

    Plain dicts, not SDK models, because building a pydantic object per streamed token is the
    most expensive thing a gateway can do on its hot path.
    """

    def stream_chat(self, body: JSON) -> AsyncGenerator[ChunkBatch]:
        """Yield the chat.completion.chunk dicts of a `stream: true` request, in batches of the
        chunks that arrived together; never an empty batch."""
        ...

    async def chat(self, body: JSON) -> JSON:
        """A non-streaming chat completion."""
        ...

    async def embeddings(self, body: JSON) -> JSON: ...

    async def moderations(self, body: JSON) -> JSON:
        """`POST /v1/moderations` (guardrails of type `moderations`)."""
        ...

    async def list_models(self) -> list[str]: ...

    async def aclose(self) -> None: ...
