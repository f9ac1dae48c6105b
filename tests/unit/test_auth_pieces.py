"""The pure pieces of authentication: key material, the token bucket, the start-up posture, Host parsing."""

from __future__ import annotations

import pytest

from riposte.api.security import allowed_hosts, host_name
from riposte.auth.keys import VerifiedKeys, mint_key, parse_key, secret_matches
from riposte.auth.limiter import RequestLimiter
from riposte.auth.posture import InsecureBindError, check_posture, is_loopback
from riposte.auth.settings import LimitSettings
from riposte.errors import RateLimitError


def test_a_minted_key_verifies_and_its_hash_is_not_the_secret() -> None:
    key = mint_key()
    presented = parse_key(key.secret_key)
    assert presented is not None and presented.key_id == key.key_id
    assert presented.secret not in key.hash
    assert secret_matches(presented.secret, key.salt, key.hash)
    assert not secret_matches(presented.secret + "x", key.salt, key.hash)
    assert parse_key("sk-something") is None and parse_key("rsk_short_x") is None


def test_verified_keys_need_the_same_secret_and_the_same_stored_hash() -> None:
    key = mint_key()
    presented = parse_key(key.secret_key)
    assert presented is not None
    cache = VerifiedKeys()
    assert not cache.known(presented, key.hash)
    cache.remember(presented, key.hash)
    assert cache.known(presented, key.hash)
    assert not cache.known(presented, "another-hash")
    forged = parse_key(f"rsk_{key.key_id}_forged")
    assert forged is not None and not cache.known(forged, key.hash)


def test_the_token_bucket_refills_over_time() -> None:
    now = [0.0]
    limiter = RequestLimiter(clock=lambda: now[0])
    limits = LimitSettings(requests_per_minute=60)
    for _ in range(60):
        limiter.acquire("k", limits)
        limiter.release("k")
    with pytest.raises(RateLimitError) as raised:
        limiter.acquire("k", limits)
    assert raised.value.retry_after == 1 and raised.value.headers() == {"Retry-After": "1"}
    now[0] = 1.0
    limiter.acquire("k", limits)


def test_concurrency_is_released() -> None:
    limiter = RequestLimiter()
    limits = LimitSettings(max_concurrent_requests=1)
    limiter.acquire("k", limits)
    with pytest.raises(RateLimitError):
        limiter.acquire("k", limits)
    limiter.acquire("other", limits)
    limiter.release("k")
    limiter.acquire("k", limits)


def test_posture() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5")
    check_posture("127.0.0.1", auth_configured=False, insecure_no_auth=False)
    check_posture("0.0.0.0", auth_configured=True, insecure_no_auth=False)
    check_posture("0.0.0.0", auth_configured=False, insecure_no_auth=True)
    with pytest.raises(InsecureBindError):
        check_posture("0.0.0.0", auth_configured=False, insecure_no_auth=False)


def test_hosts() -> None:
    assert host_name("Example.com:8321") == "example.com"
    assert host_name("[::1]:8321") == "::1"
    assert host_name("::1") == "::1"
    assert allowed_hosts("0.0.0.0", None) is None
    assert allowed_hosts("10.0.0.5", None) == {"localhost", "127.0.0.1", "::1", "10.0.0.5"}
    assert allowed_hosts("0.0.0.0", ["api.example"]) == {"api.example"}
