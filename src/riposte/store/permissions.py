"""Data at rest: the data directory is the owner's only (0700), and so is the database file (0600)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url


def secure_data_dir(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)


def secure_database_files(database_url: str) -> None:
    """0600 on a SQLite database and its WAL and shared-memory files (PostgreSQL keeps its own)."""
    parsed = make_url(database_url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    for suffix in ("", "-wal", "-shm"):
        path = Path(parsed.database + suffix)
        if path.exists():
            os.chmod(path, 0o600)
