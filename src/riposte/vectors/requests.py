"""Request bodies of the Vector Stores API. Unknown fields are a 400, never silently ignored."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from riposte.metadata import metadata_within_limits
from riposte.param_path import printable, without_nul
from riposte.vectors.filters import check_attribute_key
from riposte.vectors.params import invalid

MAX_ATTRIBUTES = 16
MAX_ATTRIBUTE_STRING = 512


# Stored in plain text columns, where PostgreSQL refuses NUL (and VARCHAR lengths), so these are
# checked here, the same for SQLite.
Text = Annotated[str, without_nul]
Id = Annotated[str, Field(max_length=100), printable]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpiresAfter(_Body):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class CreateStoreBody(_Body):
    name: Text | None = None
    description: Text | None = None
    file_ids: list[Id] | None = None
    chunking_strategy: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    expires_after: ExpiresAfter | None = None
    # Extensions (sent with `extra_body`): the store's embedding model and its vector size.
    embedding_model: Annotated[str, Field(max_length=300), printable] | None = None
    embedding_dimension: int | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return metadata_within_limits(value)


class UpdateStoreBody(_Body):
    name: Text | None = None
    expires_after: ExpiresAfter | None = None
    metadata: dict[str, str] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return metadata_within_limits(value)


class AttachFileBody(_Body):
    file_id: Id
    attributes: dict[str, Any] | None = None
    chunking_strategy: dict[str, Any] | None = None


class UpdateFileBody(_Body):
    attributes: dict[str, Any] | None


class BatchFile(_Body):
    file_id: Id
    attributes: dict[str, Any] | None = None
    chunking_strategy: dict[str, Any] | None = None


class CreateBatchBody(_Body):
    file_ids: list[Id] | None = None
    files: list[BatchFile] | None = None
    attributes: dict[str, Any] | None = None
    chunking_strategy: dict[str, Any] | None = None


class HybridSearch(_Body):
    embedding_weight: float = Field(ge=0)
    text_weight: float = Field(ge=0)


class RankingOptions(_Body):
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: float | None = Field(default=None, ge=0, le=1)
    hybrid_search: HybridSearch | None = None


class SearchBody(_Body):
    query: Text | list[Text]
    filters: dict[str, Any] | None = None
    max_num_results: int = Field(default=10, ge=1, le=50)
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False
    # Extension: how to rank (the seed system's `search_mode`).
    search_mode: Literal["vector", "keyword", "hybrid"] | None = None


def check_attributes(raw: dict[str, Any] | None, param: str = "attributes") -> dict[str, str | int | float | bool]:
    """A file's attributes: at most 16 keys, values short strings, booleans or finite numbers."""
    if raw is None:
        return {}
    if len(raw) > MAX_ATTRIBUTES:
        raise invalid(param, f"at most {MAX_ATTRIBUTES} attributes are allowed")
    for key, value in raw.items():
        check_attribute_key(key, f"{param}.{key}")
        if isinstance(value, str):
            if len(value) > MAX_ATTRIBUTE_STRING:
                raise invalid(f"{param}.{key}", f"strings may be at most {MAX_ATTRIBUTE_STRING} characters long")
        elif isinstance(value, float) and not math.isfinite(value):
            raise invalid(f"{param}.{key}", "numbers must be finite")
        elif not isinstance(value, bool | int | float):
            raise invalid(f"{param}.{key}", "values must be strings, numbers or booleans")
    return dict(raw)
