"""API key material: minting, the stored hash, and constant-time verification.

A key reads `rsk_<key id>_<secret>`. The id is public (it finds the row); the secret is 256
random bits shown once and stored only as a salted scrypt hash, so a copy of the database
holds nothing a client could present.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "rsk_"
# scrypt at 16 MiB / ~40 ms: cheap once per key and process (see VerifiedKeys), costly to brute force.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32, "maxmem": 64 * 1024 * 1024}


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret_key: str  # the full key the client sends; never stored
    salt: str
    hash: str


@dataclass(frozen=True)
class PresentedKey:
    key_id: str
    secret: str


def mint_key() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    return NewKey(key_id=key_id, secret_key=f"{KEY_PREFIX}{key_id}_{secret}", salt=salt, hash=hash_secret(secret, salt))


def parse_key(value: str) -> PresentedKey | None:
    """The key id and secret of a presented key, or None when it is not shaped like our keys."""
    if not value.startswith(KEY_PREFIX):
        return None
    key_id, separator, secret = value[len(KEY_PREFIX):].partition("_")
    if not separator or len(key_id) != 12 or not secret:
        return None
    return PresentedKey(key_id=key_id, secret=secret)


def hash_secret(secret: str, salt: str) -> str:
    return hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), **_SCRYPT).hex()


def secret_matches(secret: str, salt: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret, salt), stored_hash)


class VerifiedKeys:
    """Keys this process has verified, so scrypt runs once per key rather than once per request.

    Holds a fast digest of the full presented secret next to the stored hash it was checked
    against; a later request must present the same secret (compared in constant time) for a row
    whose hash has not changed. Revocation is still read from the database on every request.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._verified: dict[str, tuple[str, bytes]] = {}
        self._capacity = capacity

    def known(self, presented: PresentedKey, stored_hash: str) -> bool:
        entry = self._verified.get(presented.key_id)
        if entry is None or entry[0] != stored_hash:
            return False
        return hmac.compare_digest(entry[1], _digest(presented.secret))

    def remember(self, presented: PresentedKey, stored_hash: str) -> None:
        if len(self._verified) >= self._capacity:
            self._verified.clear()
        self._verified[presented.key_id] = (stored_hash, _digest(presented.secret))


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()
