"""The inspector's login session and CSRF token, as cookies.

The session cookie holds the API key sealed with the server's keyring (AES-GCM, sealing.py), so
the cookie is useless to anyone without the server's keys, and each request re-authenticates the
key exactly as the API does: a revoked key ends its sessions at once. Both cookies are HttpOnly
(scripts cannot read them) and SameSite=Strict (no cross-site request carries them), and Secure
when the page is served over https. Form posts also carry the CSRF token in a field that must
match its cookie (double submit), since SameSite alone is not honoured by every browser.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

import orjson
from fastapi import Request
from fastapi.responses import Response

from riposte.sealing import Keyring, SealError

SESSION_COOKIE = "riposte_ui_session"
CSRF_COOKIE = "riposte_ui_csrf"
CSRF_FIELD = "csrf_token"
COOKIE_PATH = "/ui"
_PURPOSE = "inspector-session"


@dataclass(frozen=True)
class Session:
    api_key: str
    expires_at: float


def sealed_session(keyring: Keyring, api_key: str, lifetime_seconds: float) -> str:
    payload = {"key": api_key, "exp": time.time() + lifetime_seconds}
    return keyring.seal(orjson.dumps(payload), _PURPOSE)


def opened_session(keyring: Keyring, cookie: str | None) -> Session | None:
    """The session in a cookie; None when absent, altered, sealed elsewhere or expired."""
    if not cookie:
        return None
    try:
        payload = orjson.loads(keyring.open(cookie, _PURPOSE))
    except (SealError, orjson.JSONDecodeError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("key"), str):
        return None
    expires_at = float(payload.get("exp") or 0)
    if expires_at < time.time():
        return None
    return Session(api_key=payload["key"], expires_at=expires_at)


def csrf_token(request: Request) -> str:
    """The token the page's forms carry: the cookie's, or a new one `set_cookies` will send."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) >= 32:
        return existing
    token: str | None = getattr(request.state, "new_csrf_token", None)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf_token = token
    return token


def csrf_valid(request: Request, submitted: str | None) -> bool:
    expected = request.cookies.get(CSRF_COOKIE)
    return bool(expected and submitted and hmac.compare_digest(expected, submitted))


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookies(request: Request, response: Response) -> Response:
    """Send the CSRF cookie a page created while rendering its forms."""
    token = getattr(request.state, "new_csrf_token", None)
    if token is not None:
        response.set_cookie(CSRF_COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="strict",
                            secure=_secure(request))
    return response


def set_session_cookie(request: Request, response: Response, value: str, lifetime_seconds: float) -> None:
    response.set_cookie(SESSION_COOKIE, value, max_age=int(lifetime_seconds), path=COOKIE_PATH, httponly=True,
                        samesite="strict", secure=_secure(request))


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=_secure(request))
