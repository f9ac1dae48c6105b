"""The outbound URL policy: metadata and link-local always refused, loopback by configuration."""

from __future__ import annotations

import pytest

from riposte.outbound import OutboundDenied, OutboundPolicy


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/mcp",
    "http://[::ffff:169.254.169.254]/",
    "http://100.100.100.200/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://127.0.0.1:8000/mcp",
    "http://localhost:8000/mcp",
    "http://0.0.0.0/",
    "ftp://example.com/file",
    "not a url",
])
async def test_the_default_policy_refuses(url: str) -> None:
    with pytest.raises(OutboundDenied) as raised:
        await OutboundPolicy().check(url, "tools[0].server_url")
    assert raised.value.param == "tools[0].server_url" and raised.value.status_code == 400


async def test_loopback_is_allowed_by_configuration_but_metadata_never() -> None:
    policy = OutboundPolicy(allow_loopback=True)
    await policy.check("http://127.0.0.1:8000/mcp", "p")
    await policy.check("http://[::1]:8000/mcp", "p")
    with pytest.raises(OutboundDenied):
        await policy.check("http://169.254.169.254/", "p")


async def test_private_networks_are_allowed_unless_switched_off() -> None:
    await OutboundPolicy().check("http://10.1.2.3/mcp", "p")
    with pytest.raises(OutboundDenied):
        await OutboundPolicy(allow_private=False).check("http://10.1.2.3/mcp", "p")


async def test_the_allow_list_admits_only_its_hosts_and_the_deny_list_wins() -> None:
    policy = OutboundPolicy(allow_hosts=["*.example.test", "10.0.0.7"], deny_hosts=["bad.example.test"])
    await policy.check("https://10.0.0.7/mcp", "p")
    for url in ("https://other.test/mcp", "https://bad.example.test/mcp"):
        with pytest.raises(OutboundDenied):
            await policy.check(url, "p")
