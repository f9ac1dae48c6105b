"""Turns a request's `Authorization` header into a Principal, once, at the edge."""

from __future__ import annotations

import asyncio
import time

from riposte.auth.keys import VerifiedKeys, parse_key, secret_matches
from riposte.auth.oidc import OidcVerifier, looks_like_jwt
from riposte.auth.principal import ANONYMOUS, Principal
from riposte.auth.settings import AuthSettings, LimitSettings
from riposte.errors import AuthenticationError
from riposte.store.api_keys import ApiKeyRecord, ApiKeyStore

# With no key yet, how often to look again whether one was created (`riposte keys create`
# writes to the database while the server runs).
_RECHECK_SECONDS = 1.0


class Authenticator:
    def __init__(self, keys: ApiKeyStore, settings: AuthSettings) -> None:
        self._keys = keys
        self._limits = settings.limits
        self._oidc = OidcVerifier(settings.oidc, settings.limits) if settings.oidc is not None else None
        self._verified = VerifiedKeys()
        # Once on, authentication stays on for the life of the process.
        self._enabled = self._oidc is not None
        self._checked_at = float("-inf")

    async def enabled(self) -> bool:
        if not self._enabled and time.monotonic() - self._checked_at >= _RECHECK_SECONDS:
            self._checked_at = time.monotonic()
            self._enabled = await self._keys.any_created()
        return self._enabled

    async def principal(self, authorization: str | None) -> Principal:
        """The caller; ANONYMOUS while no key exists. A missing or bad credential is a 401."""
        if not await self.enabled():
            return ANONYMOUS
        token = _bearer_token(authorization)
        if self._oidc is not None and looks_like_jwt(token):
            return await self._oidc.principal(token)
        return await self._key_principal(token)

    async def _key_principal(self, token: str) -> Principal:
        presented = parse_key(token)
        record = await self._keys.get(presented.key_id) if presented is not None else None
        if presented is None or record is None or record.revoked_at is not None:
            raise _incorrect_key()
        if not self._verified.known(presented, record.hash):
            # scrypt is CPU-bound for tens of milliseconds: not on the event loop.
            if not await asyncio.to_thread(secret_matches, presented.secret, record.salt, record.hash):
                raise _incorrect_key()
            self._verified.remember(presented, record.hash)
        return Principal(project=record.project, admin=record.admin, limit_key=record.key_id,
                         limits=_merged_limits(self._limits, record))


def _bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", code="missing_api_key"
        )
    return token.strip()


def _incorrect_key() -> AuthenticationError:
    return AuthenticationError("Incorrect API key provided.")


def _merged_limits(defaults: LimitSettings, record: ApiKeyRecord) -> LimitSettings:
    if not record.limits:
        return defaults
    return defaults.model_copy(update={k: v for k, v in record.limits.items() if k in LimitSettings.model_fields})
