"""The `riposte` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from riposte import __version__, worker_sockets
from riposte.api.websocket_settings import uvicorn_websocket_options
from riposte.auth.cli import add_key_commands, check_serve_posture, run_keys
from riposte.auth.posture import InsecureBindError
from riposte.config import InferenceMode, SettingsError, load_settings
from riposte.guardrails.guards import GuardRegistry
from riposte.inference.router import ModelNames
from riposte.observability.logs import configure_logging
from riposte.observability.startup import log_summary
from riposte.sealing import KEY_FILE_NAME, load_keyring, rotate_key_file

# Imported by each worker process (by name: uvicorn's workers and its reloader take a name).
_APP = "riposte.app:app_from_environment"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="riposte", description="The OpenAI Responses API over any chat backend.")
    parser.add_argument("--version", action="version", version=f"riposte {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--config", type=Path, help="YAML settings file")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8321)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--inference-mode", choices=[m.value for m in InferenceMode],
                       help="live, record, replay or record-if-missing (default live)")
    serve.add_argument("--recordings", type=Path, help="recordings directory for record/replay")
    serve.add_argument("--data-dir", type=Path, help="where the database and files live (default .riposte)")
    serve.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql+asyncpg://host/db")
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"],
                       help="default info")
    serve.add_argument("--log-format", choices=["text", "json"], help="default text; json is one object a line")
    serve.add_argument("--insecure-no-auth", action="store_true", default=None,
                       help="serve a non-loopback address with no API key configured (anyone can use it)")
    sealing = commands.add_parser("sealing-keys", help="list or rotate the keys that seal encrypted reasoning")
    sealing.add_argument("action", choices=["list", "rotate"])
    sealing.add_argument("--config", type=Path, help="YAML settings file")
    sealing.add_argument("--data-dir", type=Path, help="where the key file lives (default .riposte)")
    add_key_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sealing-keys":
        return _sealing_keys(args)
    if args.command == "keys":
        try:
            settings = load_settings(args.config, {"data_dir": args.data_dir, "database_url": args.database_url})
        except SettingsError as exc:
            print(f"riposte: {exc}", file=sys.stderr)
            return 2
        return run_keys(args, settings)
    overrides = {
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "inference_mode": args.inference_mode,
        "recordings_dir": args.recordings,
        "data_dir": args.data_dir,
        "database_url": args.database_url,
        "log_level": args.log_level,
        "log_format": args.log_format,
        "insecure_no_auth": args.insecure_no_auth,
    }
    try:
        settings = load_settings(args.config, overrides)
    except SettingsError as exc:
        print(f"riposte: {exc}", file=sys.stderr)
        return 2
    try:
        check_serve_posture(settings)
        GuardRegistry.check_models(settings.guardrails, ModelNames(settings))
    except (InsecureBindError, ValueError) as exc:
        print(f"riposte: {exc}", file=sys.stderr)
        return 2
    _export_for_workers(args.config, overrides)
    if settings.workers > 1:
        _share_metrics_between_workers()
    configure_logging(settings.log_level, settings.log_format)
    log_summary(settings)
    options: dict[str, Any] = dict(
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=None,  # the logging configured above, in this process and in each worker
        access_log=False,  # Riposte writes its own request line (riposte.access)
        **uvicorn_websocket_options(settings.websocket, settings.max_request_bytes),
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    if settings.workers > 1 and worker_sockets.SUPPORTED:
        return _serve_workers(uvicorn.Config(_APP, **options))
    uvicorn.run(_APP, **options)
    return 0


def _serve_workers(config: uvicorn.Config) -> int:
    """The workers under uvicorn's supervisor, each accepting on a socket of its own
    (`riposte.worker_sockets`)."""
    try:
        listener = worker_sockets.worker_listener(config.host, config.port)
    except OSError as exc:
        print(f"riposte: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    host, port = listener.getsockname()[:2]
    logging.getLogger("uvicorn.error").info("Uvicorn running on http://%s:%d with %d workers, each accepting "
                                            "its own connections", host, port, config.workers)
    try:
        Multiprocess(config, sockets=[listener]).run()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
    return 0


def _sealing_keys(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config, {"data_dir": args.data_dir})
    except SettingsError as exc:
        print(f"riposte: {exc}", file=sys.stderr)
        return 2
    key_file = settings.data_dir / KEY_FILE_NAME
    if args.action == "rotate":
        if settings.sealing_keys:
            print("riposte: the keys come from the sealing_keys setting; put a new key first there", file=sys.stderr)
            return 2
        print(f"new current key {rotate_key_file(key_file).key_id_hex} in {key_file}")
    keyring = load_keyring(settings.sealing_keys, settings.data_dir)
    source = "setting sealing_keys" if settings.sealing_keys else str(key_file)
    for position, key in enumerate(keyring.keys):
        print(f"{key.key_id_hex}  {'current (seals and opens)' if position == 0 else 'old (opens only)'}  {source}")
    return 0


def _share_metrics_between_workers() -> None:
    """Workers write their metrics to one directory that any worker's /metrics reads; it must be
    named before a worker imports prometheus_client, and start empty."""
    from riposte.observability.metrics import MULTIPROCESS_ENV

    if not os.environ.get(MULTIPROCESS_ENV):
        os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="riposte-metrics-")


def _export_for_workers(config: Path | None, overrides: dict[str, object]) -> None:
    """Worker processes rebuild the settings from the environment, so CLI flags travel there."""
    if config is not None:
        os.environ["RIPOSTE_CONFIG"] = str(config.resolve())
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"RIPOSTE_{key.upper()}"] = str(value)


if __name__ == "__main__":
    raise SystemExit(main())
