"""Which project's rows a store reads and writes. Every owned table has a `project` column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


# The server's own work (ingestion, expiry): no request, every project.
SYSTEM = Owner(sees_all=True)
