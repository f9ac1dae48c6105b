"""Bearer JWTs from an OIDC identity provider: signature by the provider's JWKS, then a claim
names the project."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt

from riposte.auth.principal import Principal
from riposte.auth.settings import LimitSettings, OidcSettings
from riposte.errors import AuthenticationError


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class OidcVerifier:
    def __init__(self, settings: OidcSettings, limits: LimitSettings) -> None:
        self._settings = settings
        self._limits = limits
        # Caches the provider's keys and refetches when a token names an unknown key id.
        self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300, timeout=10)

    async def principal(self, token: str) -> Principal:
        # The JWKS fetch is blocking I/O; keep it off the event loop.
        claims = await asyncio.to_thread(self._verified_claims, token)
        project = claims.get(self._settings.project_claim)
        if not isinstance(project, str) or not project:
            raise AuthenticationError(f"The token has no '{self._settings.project_claim}' claim naming a project.")
        subject = claims.get("sub")
        return Principal(project=project, admin=self._is_admin(claims),
                         limit_key=f"oidc:{subject if isinstance(subject, str) else project}", limits=self._limits)

    def _verified_claims(self, token: str) -> dict[str, Any]:
        settings = self._settings
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=settings.algorithms, audience=settings.audience, issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp"], "verify_aud": settings.audience is not None},
            )
        except jwt.PyJWKClientError as exc:
            raise AuthenticationError("The token's signing key could not be found.") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"The token is not valid: {exc}.") from exc
        return claims

    def _is_admin(self, claims: dict[str, Any]) -> bool:
        if self._settings.admin_claim is None:
            return False
        value = claims.get(self._settings.admin_claim)
        wanted = self._settings.admin_value
        return value == wanted or (isinstance(value, list) and wanted in value)
