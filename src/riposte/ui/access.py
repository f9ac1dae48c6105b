"""Who is looking: the inspector's answer to authentication, with the API's keys and projects.

- Authentication on (keys or OIDC configured): a page needs a login session (ui/session.py); its
  key is authenticated on every request exactly as the API authenticates a bearer key.
- Authentication off on loopback: the inspector acts for the default project, as the API does.
- Authentication off on any other address: the inspector does not exist (404), since anyone
  reaching the port would read every stored turn.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request

from riposte.auth.posture import is_loopback
from riposte.auth.principal import ANONYMOUS, Principal, current_principal
from riposte.errors import RiposteError
from riposte.services import Services
from riposte.ui.session import SESSION_COOKIE, opened_session


class InspectorOff(Exception):
    """Answered 404: the inspector is disabled, or would be open to anyone."""


class LoginRequired(Exception):
    """Answered with a redirect to the login page, coming back to `next_path` afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path

    @property
    def location(self) -> str:
        return f"/ui/login?next={quote(self.next_path, safe='/')}"


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    # The services limited to the viewer's project (Services.owned_by).
    services: Services
    # Whether there is a login at all (authentication on).
    logged_in: bool


async def inspector_open(services: Services) -> bool:
    """Whether the inspector may be served; False makes every /ui page a 404."""
    if not services.settings.inspector.enabled:
        return False
    return await services.auth.enabled() or is_loopback(services.settings.host)


async def viewer(request: Request) -> AsyncGenerator[Viewer]:
    """The page's viewer, made the request's principal for what the page calls (vector search)."""
    services: Services = request.app.state.services
    if not await inspector_open(services):
        raise InspectorOff()
    principal = ANONYMOUS
    auth_on = await services.auth.enabled()
    if auth_on:
        session = opened_session(services.keyring, request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise LoginRequired(_here(request))
        try:
            principal = await services.auth.principal(f"Bearer {session.api_key}")
        except RiposteError as exc:  # revoked or deleted since the login
            raise LoginRequired(_here(request)) from exc
    token = current_principal.set(principal)
    try:
        yield Viewer(principal=principal, services=services.owned_by(principal.owner), logged_in=auth_on)
    finally:
        current_principal.reset(token)


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")
