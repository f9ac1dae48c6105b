"""Table definitions. Changes to them go through a new named migration in migrations.py."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from riposte.store.ownership import DEFAULT_PROJECT

metadata = MetaData()

# Tables whose rows belong to a project. Conversation items, vector store files and batches
# belong to their parent's project.
OWNED_TABLE_NAMES = ("responses", "unstored_responses", "conversations", "files", "vector_stores")

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("applied_at", Float, nullable=False),
)

responses = Table(
    "responses",
    metadata,
    # An explicit sequence gives listing a total order even when created_at ties.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(100), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("model", String(300), nullable=False),
    Column("status", String(40), nullable=False),
    Column("previous_response_id", String(100), nullable=True),
    # JSON documents, stored as text so both backends hold exactly the bytes orjson wrote.
    Column("response", Text, nullable=False),
    Column("input_items", Text, nullable=False),
    Column("messages", Text, nullable=False),
    # Chain storage (migration 0005). A row whose `history_base` is set holds only what its turn
    # added: `input_items` are the turn's new items, `messages` the chat messages after the base's.
    # The full history is the base's full history, the base's output, then this row's own part.
    # Null: the row holds its full history itself (every row written before 0005 is of this kind).
    Column("history_base", String(100), nullable=True),
    # Deleted, but kept while later rows extend its history; removed with the last of them.
    Column("deleted", Boolean, nullable=False, server_default=false()),
    # The server instance running the turn while the row is `in_progress`; null once it has ended.
    Column("owner", String(64), nullable=True),
    Index("ix_responses_history_base", "history_base"),
    Index("ix_responses_owner", "owner"),
    # The project that owns the row (store/ownership.py); added by migration 0007.
    Column("project", String(200), nullable=False, server_default=DEFAULT_PROJECT),
)

# Every item a stored response holds (its own input items and its output), by id, so that an
# `item_reference` input item resolves without reading whole responses (migration 0008). Rows
# belong to their response's project.
response_items = Table(
    "response_items",
    metadata,
    Column("project", String(200), nullable=False, server_default=DEFAULT_PROJECT),
    Column("item_id", String(100), nullable=False),
    Column("response_id", String(100), nullable=False, index=True),
    Column("item", Text, nullable=False),
    PrimaryKeyConstraint("project", "item_id"),
)

# What each stored turn did upstream, for the web inspector (engine/turn_trace.py): one row per
# response, written with the turn's final store write, removed after `inspector.trace_retention_days`
# (migration 0009). Rows belong to their response's project.
response_traces = Table(
    "response_traces",
    metadata,
    Column("response_id", String(100), primary_key=True),
    Column("project", String(200), nullable=False, server_default=DEFAULT_PROJECT),
    Column("created_at", Float, nullable=False, index=True),
    # JSON list of steps (upstream calls, tool calls and guardrail checks, in order).
    Column("steps", Text, nullable=False),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("metadata", Text, nullable=False),
    # The position the next appended item takes. An append bumps it first, which locks this row
    # until the append commits: the per-conversation lock that keeps concurrent turns in order.
    Column("next_position", BigInteger, nullable=False),
    # The project that owns the row (store/ownership.py); added by migration 0007.
    Column("project", String(200), nullable=False, server_default=DEFAULT_PROJECT),
)

conversation_items = Table(
    "conversation_items",
    metadata,
    Column("conversation_id", String(100), nullable=False),
    # Explicit order within the conversation; gaps are left where items were deleted.
    Column("position", BigInteger, nullable=False),
    Column("id", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("item", Text, nullable=False),
    PrimaryKeyConstraint("conversation_id", "position"),
    UniqueConstraint("conversation_id", "id"),
    # item_reference lookups by id alone (migration 0006).
    Index("ix_conversation_items_id", "id"),
)

# Ids of responses created with `store: false`: only the id, so that chaining from one can be
# told apart from chaining from an id that never existed.
unstored_responses = Table(
    "unstored_responses",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("created_at", Float, nullable=False),
    # The project that owns the row (store/ownership.py); added by migration 0007.
    Column("project", String(200), nullable=False, server_default=DEFAULT_PROJECT),
)

files = Table(
    "files",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(100), nullable=False, unique=True),
    Column("filename", Text, nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    # The project that owns the row (store/ownership.py); added by migration 0007.
    Column("project", String(200), nullable=False, server_default=DEFAULT_PROJECT),
)

vector_stores = Table(
    "vector_stores",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(100), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_active_at", BigInteger, nullable=False),
    Column("expires_after_days", Integer, nullable=True),
    Column("metadata", Text, nullable=False),
    Column("embedding_model", String(300), nullable=False),
    # Null until the first embedding is known, for upstream models whose size was not given.
    Column("embedding_dimension", Integer, nullable=True),
    # The project that owns the row (store/ownership.py); added by migration 0007.
    Column("project", String(200), nullable=False, server_default=DEFAULT_PROJECT),
)

vector_store_files = Table(
    "vector_store_files",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("vector_store_id", String(100), nullable=False, index=True),
    Column("file_id", String(100), nullable=False, index=True),
    Column("batch_id", String(100), nullable=True, index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("usage_bytes", BigInteger, nullable=False),
    Column("max_chunk_size_tokens", Integer, nullable=False),
    Column("chunk_overlap_tokens", Integer, nullable=False),
    Column("attributes", Text, nullable=False),
    # The server instance ingesting the file while it is `in_progress` (migration 0005), and how
    # many times ingestion was started, so a file that keeps killing its server is not resumed forever.
    Column("owner", String(64), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    UniqueConstraint("vector_store_id", "file_id"),
)

vector_store_file_batches = Table(
    "vector_store_file_batches",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(100), nullable=False, unique=True),
    Column("vector_store_id", String(100), nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("cancelled", Boolean, nullable=False),
)

# Live server processes (migration 0005). Each process registers at start-up and beats every few
# seconds; work owned by an instance found dead (same host and its process gone, or its heartbeat
# stale) is recovered by whichever process notices first.
server_instances = Table(
    "server_instances",
    metadata,
    Column("id", String(64), primary_key=True),
    # hostname, boot id and pid namespace: instances with equal `host` see each other's processes.
    Column("host", String(300), nullable=False),
    Column("pid", Integer, nullable=False),
    # The process's start time in clock ticks since boot (Linux), so a reused pid is not taken for it.
    Column("process_start", BigInteger, nullable=True),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

# API keys: only a salted hash of each secret (auth/keys.py); a revoked key keeps its row.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("name", Text, nullable=False),
    Column("admin", Boolean, nullable=False),
    Column("salt", String(64), nullable=False),
    Column("hash", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    # Per-key limit overrides (auth/settings.py LimitSettings), as JSON.
    Column("limits", Text, nullable=False),
)

# The stream events of stored responses that were streamed or run in the background (migrations
# 0010, 0011), so that `GET /v1/responses/{id}?stream=true&starting_after=N` can replay them. One row
# per response per flush (store/event_log.py): the events numbered first_sequence..last_sequence,
# as a JSON array. A row per event cost the stream as much CPU again as the rest of the turn.
response_events = Table(
    "response_events",
    metadata,
    Column("response_id", String(100), primary_key=True),
    Column("first_sequence", Integer, primary_key=True, autoincrement=False),
    Column("last_sequence", Integer, nullable=False),
    Column("events", Text, nullable=False),
)

# Background responses waiting for, or held by, a worker (migration 0009); store/background_jobs.py.
background_jobs = Table(
    "background_jobs",
    metadata,
    Column("response_id", String(100), primary_key=True),
    Column("project", String(200), nullable=False),
    # The caller could see every project (an admin): the worker runs the turn with the same view.
    Column("sees_all", Boolean, nullable=False),
    # The create request's body as JSON, which the worker turns into the turn again.
    Column("request", Text, nullable=False),
    # queued -> running -> done; a running job whose lease ran out goes back to queued by a claim.
    Column("state", String(20), nullable=False),
    Column("queued_at", Float, nullable=False),
    Column("owner", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
    # Raised by every claim (and by hand-back and cancel of a queued job): a worker's writes carry
    # the fence it claimed with and are refused once it no longer matches.
    Column("fence", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    # The last sequence number stored for the response, so a retry numbers its events after it.
    Column("last_sequence", Integer, nullable=False),
    # Whose limits the job counts against (auth/principal.py's `limit_key`; migration 0012): a key
    # may hold at most `max_concurrent_requests` unfinished background responses. None before 0012.
    Column("limit_key", String(200), nullable=True),
    Index("ix_background_jobs_state", "state", "queued_at"),
    Index("ix_background_jobs_limit_key", "limit_key", "state"),
)
