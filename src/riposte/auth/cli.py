"""`riposte keys create|list|revoke`: API keys, written straight to the server's database."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from riposte.auth.keys import mint_key, parse_key
from riposte.auth.posture import check_posture, is_loopback
from riposte.auth.settings import LimitSettings
from riposte.config import Settings
from riposte.store.api_keys import ApiKeyRecord, ApiKeyStore
from riposte.store.database import create_engine, migrate
from riposte.store.permissions import secure_data_dir, secure_database_files

_LIMIT_FLAGS = tuple(LimitSettings.model_fields)


def add_key_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it (shown only this once)")
    create.add_argument("--project", required=True, help="the project the key acts for; it owns what the key creates")
    create.add_argument("--name", default="", help="a label to recognise the key by")
    create.add_argument("--admin", action="store_true", help="the key sees every project's objects")
    for flag in _LIMIT_FLAGS:
        create.add_argument(f"--{flag.replace('_', '-')}", type=int, dest=flag,
                            help=f"per-key override of auth.limits.{flag}")
    actions.add_parser("list", help="list keys as JSON lines (never the secret)")
    revoke = actions.add_parser("revoke", help="revoke a key; its next request gets 401")
    revoke.add_argument("key", help="the key id, or the whole key")
    for parser in (create, *actions.choices.values()):
        _add_database_flags(parser)


def _add_database_flags(parser: argparse.ArgumentParser) -> None:
    if any(action.dest == "config" for action in parser._actions):
        return
    parser.add_argument("--config", type=Path, help="YAML settings file (the server's)")
    parser.add_argument("--data-dir", type=Path, help="the server's data directory (default .riposte)")
    parser.add_argument("--database-url", help="the server's database URL")


def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    secure_data_dir(settings.data_dir)
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        secure_database_files(settings.resolved_database_url)
        store = ApiKeyStore(engine)
        if args.action == "create":
            return await _create(store, args)
        if args.action == "list":
            for record in await store.all():
                print(orjson.dumps(record.listing()).decode())
            return 0
        return await _revoke(store, args.key)
    finally:
        await engine.dispose()


async def _create(store: ApiKeyStore, args: argparse.Namespace) -> int:
    limits = {flag: getattr(args, flag) for flag in _LIMIT_FLAGS if getattr(args, flag) is not None}
    LimitSettings.model_validate(limits)
    key = mint_key()
    await store.insert(ApiKeyRecord(key_id=key.key_id, project=args.project, name=args.name, admin=args.admin,
                                    salt=key.salt, hash=key.hash, created_at=time.time(), revoked_at=None,
                                    limits=limits))
    print(key.secret_key)
    print(f"riposte: created key {key.key_id} for project '{args.project}'"
          f"{' (admin)' if args.admin else ''}. It is shown only this once; store it now.", file=sys.stderr)
    return 0


async def _revoke(store: ApiKeyStore, key: str) -> int:
    presented = parse_key(key)
    key_id = presented.key_id if presented is not None else key
    if not await store.revoke(key_id):
        print(f"riposte: no active key with id '{key_id}'", file=sys.stderr)
        return 1
    print(f"riposte: revoked key {key_id}", file=sys.stderr)
    return 0


def check_serve_posture(settings: Settings) -> None:
    """Before `serve` starts workers: refuse an unauthenticated non-loopback bind with a clear message."""
    asyncio.run(_check_serve_posture(settings))


async def _check_serve_posture(settings: Settings) -> None:
    if settings.auth.oidc is not None or is_loopback(settings.host) or settings.insecure_no_auth:
        return
    secure_data_dir(settings.data_dir)
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        check_posture(settings.host, await ApiKeyStore(engine).any_created(), settings.insecure_no_auth)
    finally:
        await engine.dispose()
