"""The key service: authenticated encryption of blobs the server hands to clients and takes back.

Encrypted reasoning (and, later, compaction items) leave the server sealed and come back as
input. Only this module touches keys. A sealed blob is AES-256-GCM under the current key, with
the key's id in the clear so a rotated-out key that is still on the keyring can open it, and a
purpose string as associated data so a blob sealed for one use cannot be replayed as another.

Keys come from the `sealing_keys` setting (newest first), or else from `<data_dir>/sealing-keys`,
a 0600 file generated once (newest key on the first line). Rotation prepends a new key and keeps
the old ones, so blobs already handed out still open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE_NAME = "sealing-keys"
_VERSION = b"\x01"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_KEY_BYTES = 32


class SealError(Exception):
    """A blob that this server did not seal, that was altered, or whose key is no longer kept."""


@dataclass(frozen=True)
class SealingKey:
    secret: bytes

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(b"riposte-sealing-key-id" + self.secret).digest()[:_KEY_ID_BYTES]

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    @classmethod
    def from_text(cls, text: str) -> SealingKey:
        try:
            secret = base64.urlsafe_b64decode(text.strip().encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise ValueError("a sealing key must be 32 bytes in URL-safe base64") from exc
        if len(secret) != _KEY_BYTES:
            raise ValueError(f"a sealing key must be {_KEY_BYTES} bytes, got {len(secret)}")
        return cls(secret)

    def as_text(self) -> str:
        return base64.urlsafe_b64encode(self.secret).decode("ascii")


def new_key() -> SealingKey:
    return SealingKey(secrets.token_bytes(_KEY_BYTES))


class Keyring:
    """Seals with the first key; opens with any key on the ring."""

    def __init__(self, keys: list[SealingKey]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self.keys = list(keys)
        self._by_id = {key.key_id: AESGCM(key.secret) for key in reversed(self.keys)}
        self._current = self.keys[0]

    def seal(self, plaintext: bytes, purpose: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        key_id = self._current.key_id
        sealed = self._by_id[key_id].encrypt(nonce, plaintext, _associated_data(purpose, key_id))
        return base64.b64encode(_VERSION + key_id + nonce + sealed).decode("ascii")

    def open(self, token: str, purpose: str) -> bytes:
        try:
            raw = base64.b64decode(token.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise SealError("not a sealed blob (invalid base64)") from exc
        header = 1 + _KEY_ID_BYTES + _NONCE_BYTES
        if len(raw) <= header or raw[:1] != _VERSION:
            raise SealError("not a sealed blob of this server")
        key_id, nonce, sealed = raw[1:1 + _KEY_ID_BYTES], raw[1 + _KEY_ID_BYTES:header], raw[header:]
        cipher = self._by_id.get(key_id)
        if cipher is None:
            raise SealError("sealed under a key this server does not hold")
        try:
            return cipher.decrypt(nonce, sealed, _associated_data(purpose, key_id))
        except InvalidTag as exc:
            raise SealError("the blob was altered, or sealed for another purpose") from exc


def _associated_data(purpose: str, key_id: bytes) -> bytes:
    return b"riposte/" + purpose.encode("utf-8") + b"/" + key_id


def load_keyring(configured: list[str], data_dir: Path) -> Keyring:
    """Keys from configuration when given, else the data directory's key file (made on first use)."""
    if configured:
        return Keyring([SealingKey.from_text(text) for text in configured])
    return Keyring(read_or_create_key_file(data_dir / KEY_FILE_NAME))


def read_or_create_key_file(path: Path) -> list[SealingKey]:
    if not path.exists():
        _create_exclusively(path, [new_key()])
    return _read_key_file(path)


def rotate_key_file(path: Path) -> SealingKey:
    """Put a new key first; the old ones stay so that blobs sealed under them still open."""
    old = _read_key_file(path) if path.exists() else []
    key = new_key()
    _replace(path, [key, *old])
    return key


def _read_key_file(path: Path) -> list[SealingKey]:
    lines = [line for line in path.read_text(encoding="ascii").splitlines() if line.strip()]
    return [SealingKey.from_text(line) for line in lines]


def _key_file_text(keys: list[SealingKey]) -> str:
    return "".join(f"{key.as_text()}\n" for key in keys)


def _create_exclusively(path: Path, keys: list[SealingKey]) -> None:
    """Several worker processes may start at once: the first link wins, the others read its keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _write_private_temporary(path, keys)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def _replace(path: Path, keys: list[SealingKey]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(_write_private_temporary(path, keys), path)


def _write_private_temporary(path: Path, keys: list[SealingKey]) -> Path:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(_key_file_text(keys))
    return temporary
