"""The `auth:` section of the settings file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LimitSettings(BaseModel):
    """Per-key limits. None means unlimited. A key may override any of them when it is created."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(default=None, ge=1)
    # Requests in flight at once, a stream counting until its last byte.
    max_concurrent_requests: int | None = Field(default=None, ge=1)
    max_input_items: int | None = Field(default=None, ge=1)
    # Bytes of files a project may hold at once.
    file_storage_bytes: int | None = Field(default=None, ge=0)


class OidcSettings(BaseModel):
    """Bearer JWTs signed by an identity provider, verified with keys from its JWKS URL."""

    model_config = ConfigDict(extra="forbid")

    jwks_url: str
    issuer: str | None = None
    audience: str | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    # The claim that names the caller's project.
    project_claim: str = "project"
    # A token whose `admin_claim` equals (or, for a list, contains) `admin_value` is an admin.
    admin_claim: str | None = None
    admin_value: str = "admin"
    leeway_seconds: int = 30


class AuthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Host header values served (host names, without the port). None: the bound address and
    # localhost; any Host when bound to a wildcard address.
    allowed_hosts: list[str] | None = None
    # Browser origins allowed by CORS (e.g. https://app.example.com); none by default.
    cors_origins: list[str] = Field(default_factory=list)
    oidc: OidcSettings | None = None
    limits: LimitSettings = Field(default_factory=LimitSettings)
