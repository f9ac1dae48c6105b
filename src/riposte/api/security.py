"""The security edge, as pure ASGI middleware: allowed Host values, browser (CSRF) protections,
CORS for configured origins only, and authentication of the caller.

Order, outermost first: Host, CORS, browser guard, authentication, then the per-key limits.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from riposte.api.errors import error_response
from riposte.api.limits import RequestLimits
from riposte.auth.principal import current_principal
from riposte.auth.settings import AuthSettings
from riposte.errors import ForbiddenRequestError, RiposteError

WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::", "[::]"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# A WebSocket upgrade acts like a write: its messages create responses.
_WEBSOCKET_UPGRADE = "WEBSOCKET"
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE", _WEBSOCKET_UPGRADE})
# The ASGI scopes that are requests from a client (not the lifespan).
_CONNECTIONS = frozenset({"http", "websocket"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Endpoints that take form uploads rather than JSON.
_FORM_PATHS = frozenset({"/v1/files"})
_PUBLIC_PATHS = frozenset({"/health", "/ready"})
# The web inspector authenticates its pages from its own session cookie (riposte/ui/access.py),
# and posts HTML forms guarded by a CSRF token (riposte/ui/session.py).
INSPECTOR_PREFIX = "/ui/"


def install_security(app: FastAPI, bound_host: str, settings: AuthSettings) -> None:
    """Add the security middleware around everything added before."""
    app.add_middleware(RequestLimits)
    app.add_middleware(Authenticate)
    hosts = allowed_hosts(bound_host, settings.allowed_hosts)
    app.add_middleware(BrowserGuard, allowed_origins=frozenset(settings.cors_origins), allowed_hosts=hosts)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["Retry-After"], max_age=600)
    if hosts is not None:
        app.add_middleware(HostAllowList, hosts=hosts)


def allowed_hosts(bound_host: str, configured: list[str] | None) -> frozenset[str] | None:
    """The Host names served; None for any (a wildcard bind with nothing configured)."""
    if configured is not None:
        return frozenset(host.lower() for host in configured)
    if bound_host in WILDCARD_ADDRESSES:
        return None
    return LOOPBACK_NAMES | {bound_host.strip("[]").lower()}


def host_name(value: str) -> str:
    """`example.com:8321` -> `example.com`; `[::1]:8321` -> `::1`."""
    if value.startswith("["):
        return value[1:].partition("]")[0].lower()
    return value.rpartition(":")[0].lower() if value.count(":") == 1 else value.lower()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


async def _refuse(error: RiposteError, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(error)(scope, receive, send)


class HostAllowList:
    """Refuses Host values it does not serve: a DNS-rebinding page names its own host."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in _CONNECTIONS:
            host = _header(scope, b"host")
            if host is not None and host_name(host) not in self.hosts:
                error = ForbiddenRequestError(f"Host '{host}' is not served here; see auth.allowed_hosts.",
                                              status_code=421, code="invalid_host")
                await _refuse(error, scope, receive, send)
                return
        await self.app(scope, receive, send)


class BrowserGuard:
    """Cross-site request forgery: a foreign page may POST `text/plain` or a form without a
    preflight, so writes from a browser Origin that is not configured are refused, and bodies
    must be JSON (multipart for uploads)."""

    def __init__(self, app: ASGIApp, allowed_origins: frozenset[str], allowed_hosts: frozenset[str] | None) -> None:
        self.app = app
        self.allowed_origins = allowed_origins
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in _CONNECTIONS:
            error = self._check(scope)
            if error is not None:
                await _refuse(error, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> RiposteError | None:
        # A browser page may open a WebSocket to any address and no preflight asks first: an
        # upgrade from a foreign Origin is refused like a cross-site write.
        method = scope["method"] if scope["type"] == "http" else _WEBSOCKET_UPGRADE
        if method in _UNSAFE_METHODS:
            origin = _header(scope, b"origin")
            if origin is not None and not self._origin_allowed(origin, scope):
                return ForbiddenRequestError(f"Requests from origin '{origin}' are not allowed; see auth.cors_origins.",
                                             code="origin_not_allowed")
        if method in _BODY_METHODS and not _is_inspector(scope["path"]) and not _bodyless(scope):
            return _content_type_error(scope["path"], _header(scope, b"content-type"))
        return None

    def _origin_allowed(self, origin: str, scope: Scope) -> bool:
        if origin in self.allowed_origins:
            return True
        if _is_inspector(scope["path"]) and _same_origin(origin, _header(scope, b"host")):
            return True  # the inspector's own forms
        host = urlsplit(origin).hostname
        return self.allowed_hosts is not None and host is not None and host.lower() in self.allowed_hosts


def _is_inspector(path: str) -> bool:
    return path.startswith(INSPECTOR_PREFIX)


def _same_origin(origin: str, host: str | None) -> bool:
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


def _bodyless(scope: Scope) -> bool:
    """A POST with no body and no Content-Type (`curl -X POST .../cancel`, as OpenAI's own examples
    send it) carries nothing to smuggle: the Origin check above still guards it."""
    if _header(scope, b"content-type") is not None or _header(scope, b"transfer-encoding") is not None:
        return False
    return _header(scope, b"content-length") in (None, "0")


def _content_type_error(path: str, content_type: str | None) -> RiposteError | None:
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if path in _FORM_PATHS:
        # A form without a file can upload nothing; it still gets the 400 naming `file`.
        if media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            return None
        expected = "multipart/form-data"
    else:
        if media_type == "application/json" or media_type.endswith("+json"):
            return None
        expected = "application/json"
    return ForbiddenRequestError(f"Content-Type must be {expected}, got '{content_type or ''}'.", status_code=415,
                                 param="Content-Type", code="unsupported_media_type")


class Authenticate:
    """Resolves the caller once per request (per WebSocket connection, refusing the upgrade with
    the same 401) and makes it the request's principal."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] not in _CONNECTIONS or scope["path"] in _PUBLIC_PATHS or scope.get("method") == "OPTIONS"
                or _is_inspector(scope["path"]) or scope["path"] == "/ui"):
            await self.app(scope, receive, send)
            return
        authenticator = scope["app"].state.services.auth
        try:
            principal = await authenticator.principal(_header(scope, b"authorization"))
        except RiposteError as error:
            await _refuse(error, scope, receive, send)
            return
        token = current_principal.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            current_principal.reset(token)
