"""The key service: sealed blobs open only under a kept key, unaltered, for the same purpose."""

from __future__ import annotations

import base64
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from riposte.config import Settings
from riposte.sealing import (
    KEY_FILE_NAME,
    Keyring,
    SealError,
    load_keyring,
    new_key,
    read_or_create_key_file,
    rotate_key_file,
)


def test_a_sealed_blob_opens_to_the_same_bytes() -> None:
    keyring = Keyring([new_key()])
    plaintext = "ünïcode reasoning\n".encode() * 10
    assert keyring.open(keyring.seal(plaintext, "reasoning"), "reasoning") == plaintext


def test_sealing_twice_gives_different_blobs() -> None:
    keyring = Keyring([new_key()])
    assert keyring.seal(b"x", "reasoning") != keyring.seal(b"x", "reasoning")


def test_an_altered_blob_does_not_open() -> None:
    keyring = Keyring([new_key()])
    raw = bytearray(base64.b64decode(keyring.seal(b"secret thoughts", "reasoning")))
    raw[-1] ^= 1
    with pytest.raises(SealError, match="altered"):
        keyring.open(base64.b64encode(bytes(raw)).decode(), "reasoning")


def test_a_blob_from_another_key_does_not_open() -> None:
    blob = Keyring([new_key()]).seal(b"secret", "reasoning")
    with pytest.raises(SealError, match="does not hold"):
        Keyring([new_key()]).open(blob, "reasoning")


def test_a_blob_sealed_for_another_purpose_does_not_open() -> None:
    keyring = Keyring([new_key()])
    with pytest.raises(SealError):
        keyring.open(keyring.seal(b"secret", "compaction"), "reasoning")


@pytest.mark.parametrize("garbage", ["", "not base64!", base64.b64encode(b"\x02short").decode()])
def test_garbage_is_a_seal_error(garbage: str) -> None:
    with pytest.raises(SealError):
        Keyring([new_key()]).open(garbage, "reasoning")


def test_old_keys_still_open_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    before = Keyring(read_or_create_key_file(path))
    blob = before.seal(b"from before the rotation", "reasoning")

    new = rotate_key_file(path)
    after = Keyring(read_or_create_key_file(path))

    assert [k.key_id for k in after.keys] == [new.key_id, before.keys[0].key_id]
    assert after.open(blob, "reasoning") == b"from before the rotation"
    assert base64.b64decode(after.seal(b"y", "reasoning"))[1:9] == new.key_id


def test_the_generated_key_file_is_private_and_stable(tmp_path: Path) -> None:
    first = load_keyring([], tmp_path)
    assert stat.S_IMODE((tmp_path / KEY_FILE_NAME).stat().st_mode) == 0o600
    assert load_keyring([], tmp_path).keys == first.keys


def test_workers_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        keyrings = list(pool.map(lambda _: load_keyring([], tmp_path), range(8)))
    assert len({ring.keys[0].key_id for ring in keyrings}) == 1
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE_NAME]


def test_configured_keys_win_over_the_key_file(tmp_path: Path) -> None:
    configured = [new_key().as_text(), new_key().as_text()]
    keyring = load_keyring(configured, tmp_path)
    assert [k.as_text() for k in keyring.keys] == configured
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_a_malformed_configured_key_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(sealing_keys=[base64.urlsafe_b64encode(b"short").decode()])
