"""Small helpers for driving vector stores through the SDK."""

from __future__ import annotations

import time
from typing import Any, TypeVar

import openai
from openai.types.vector_stores import VectorStoreFile
from pydantic import BaseModel

from riposte.testing.server import RunningServer

ModelT = TypeVar("ModelT", bound=BaseModel)


def client(server: RunningServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=60, **kwargs)


def strict(model: type[ModelT], raw: Any) -> ModelT:
    """The SDK parses leniently; this validates a raw response's JSON against the SDK type."""
    return model.model_validate(raw.http_response.json())


def wait_for_file(sdk: openai.OpenAI, store_id: str, file_id: str, timeout: float = 120) -> VectorStoreFile:
    deadline = time.monotonic() + timeout
    attached = sdk.vector_stores.files.retrieve(vector_store_id=store_id, file_id=file_id)
    while attached.status == "in_progress" and time.monotonic() < deadline:
        time.sleep(0.05)
        attached = sdk.vector_stores.files.retrieve(vector_store_id=store_id, file_id=file_id)
    return attached


def upload(sdk: openai.OpenAI, name: str, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return sdk.files.create(file=(name, data), purpose="assistants").id


# The four documents of seed 004, with their attributes (dates in Unix seconds).
SEED_FILES: list[tuple[str, str, dict[str, Any]]] = [
    ("us_marketing_q1.txt", "US promotional campaigns for Q1 2023. Revenue increased by 15% in the US region.",
     {"region": "us", "category": "marketing", "date": 1672531200}),
    ("us_engineering_q2.txt", "US technical updates for Q2 2023. New features deployed in the US region.",
     {"region": "us", "category": "engineering", "date": 1680307200}),
    ("eu_marketing_q1.txt", "European advertising campaign results for Q1 2023. Strong growth in EU markets.",
     {"region": "eu", "category": "marketing", "date": 1672531200}),
    ("asia_sales_q3.txt", "Asia Pacific revenue figures for Q3 2023. Record breaking quarter in Asia.",
     {"region": "asia", "category": "sales", "date": 1688169600}),
]
