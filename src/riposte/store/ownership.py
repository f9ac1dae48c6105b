"""Which project's rows a store reads and writes. Every owned table has a `project` column."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import ColumnElement, Table, true

DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class Owner:
    """`project` owns what is created; `sees_all` (an admin, or the server's own background work)
    reads every project's rows."""

    project: str = DEFAULT_PROJECT
    sees_all: bool = False

    def visible(self, table: Table) -> ColumnElement[bool]:
        """The condition that keeps a query on `table` to the rows this owner may see."""
        if self.sees_all:
            return true()
        column: Any = table.c.project
        return column == self.project  # type: ignore[no-any-return]

    def sees(self, project: str) -> bool:
        """The same as `visible`, for a row already read."""
        return self.sees_all or project == self.project


# The server's own work (ingestion, expiry): no request, every project.
SYSTEM = Owner(sees_all=True)


class OwnedStore:
    """A store whose reads and writes are limited to one owner's rows. The server-wide instance
    belongs to SYSTEM; each request works on a view `owned_by` the caller."""

    _access: Owner = SYSTEM

    def owned_by(self, owner: Owner) -> Self:
        view = copy.copy(self)
        view._access = owner
        return view
