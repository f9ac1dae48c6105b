"""The caller of one request: its project, whether it is an admin, and its limits."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from riposte.auth.settings import LimitSettings
from riposte.store.ownership import DEFAULT_PROJECT, Owner


@dataclass(frozen=True)
class Principal:
    project: str
    admin: bool = False
    # What limits are counted against: the API key id, "oidc:<subject>", or "anonymous".
    limit_key: str = "anonymous"
    limits: LimitSettings = field(default_factory=LimitSettings)

    @property
    def owner(self) -> Owner:
        return Owner(project=self.project, sees_all=self.admin)


# With no keys configured, every request acts for the default project.
ANONYMOUS = Principal(project=DEFAULT_PROJECT)

current_principal: ContextVar[Principal] = ContextVar("riposte_principal", default=ANONYMOUS)
