"""The one policy every URL the server fetches on a client's behalf passes (MCP servers, search
providers, input URLs): allow or deny, decided before any connection is made.

A client can name any URL in a request, so without a policy the server would fetch whatever it
is told to, including the cloud metadata endpoint that hands out the host's credentials
(169.254.169.254) or services bound to the server's own loopback. By default link-local and
metadata addresses are denied everywhere, loopback is denied unless configured (tests run their
MCP servers on 127.0.0.1), and an allow-list, when set, admits only the hosts it names. A host
name is resolved and every address it resolves to is checked, so a name pointing at a denied
address is denied too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from fnmatch import fnmatch
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from riposte.errors import InvalidRequestError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Host names of cloud metadata services that are not link-local addresses.
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
                             "instance-data.ec2.internal"})
_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "168.63.129.16",
))
_SCHEMES = ("http", "https")


class OutboundDenied(InvalidRequestError):
    """A URL the outbound policy does not allow: a 400 naming the parameter that gave it."""


class OutboundPolicy(BaseModel):
    """Settings `outbound.*`."""

    model_config = ConfigDict(extra="forbid")

    # When non-empty, only these hosts (shell patterns such as `*.example.com`) may be reached.
    allow_hosts: list[str] = Field(default_factory=list)
    # Hosts never reached, whatever the allow-list says.
    deny_hosts: list[str] = Field(default_factory=list)
    # Loopback (127.0.0.0/8, ::1, localhost): off by default; tests switch it on.
    allow_loopback: bool = False
    # Private networks (10/8, 172.16/12, 192.168/16, fc00::/7): where self-hosted tools usually live.
    allow_private: bool = True

    async def check(self, url: str, param: str) -> None:
        """Raise OutboundDenied (a 400 naming `param`) unless `url` may be fetched."""
        host = self._host(url, param)
        self._check_name(host, url, param)
        for address in await _addresses(host):
            reason = self._address_denial(address)
            if reason is not None:
                raise OutboundDenied(f"The URL '{url}' is not allowed: {host} is {reason}.", param=param,
                                     code="url_not_allowed")

    def _host(self, url: str, param: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise OutboundDenied(f"The URL '{url}' is not an http(s) URL with a host.", param=param,
                                 code="invalid_url")
        return parts.hostname.rstrip(".").lower()

    def _check_name(self, host: str, url: str, param: str) -> None:
        if host in _METADATA_HOSTS or any(fnmatch(host, pattern) for pattern in self.deny_hosts):
            raise OutboundDenied(f"The URL '{url}' is not allowed: {host} is denied.", param=param,
                                 code="url_not_allowed")
        if self.allow_hosts and not any(fnmatch(host, pattern) for pattern in self.allow_hosts):
            raise OutboundDenied(f"The URL '{url}' is not allowed: {host} is not on the outbound allow-list.",
                                 param=param, code="url_not_allowed")

    def _address_denial(self, address: IPAddress) -> str | None:
        if address in _METADATA_ADDRESSES:
            return "a cloud metadata address"
        if address.is_link_local:
            return "a link-local address"
        if address.is_loopback:
            return None if self.allow_loopback else "a loopback address (set outbound.allow_loopback to reach it)"
        if address.is_unspecified or address.is_multicast:
            return "not a routable address"
        if address.is_private:
            return None if self.allow_private else "a private address (set outbound.allow_private to reach it)"
        return "not a routable address" if address.is_reserved else None


async def _addresses(host: str) -> list[IPAddress]:
    """Every address `host` names: itself when it is one, else what it resolves to (off the loop)."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [_unmapped(literal)]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []  # an unknown name: the connection itself fails, and reports it
    return [_unmapped(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos]


def _unmapped(address: IPAddress) -> IPAddress:
    # ::ffff:169.254.169.254 is the metadata address too.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
