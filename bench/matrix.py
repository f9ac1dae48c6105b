"""The scenario matrix: which load runs against which server configuration.

Everything the issue asks for, cut to what fits in about ten minutes on two cores: the full grid
for the direct baseline, Riposte on SQLite and OGX; the cells that carry the targets for
Riposte on PostgreSQL and with several workers.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.loadgen import Mode, Scenario

CONCURRENCY = (1, 16, 64, 256)
DELAYS_MS = (0.0, 5.0)
TOKENS = 256
MULTI_WORKERS = 2
# The shape of a real deployment (issue 16): many streams, each paced like a model at 50 tokens/s.
MANY_SLOW_STREAMS = Scenario(Mode.STREAM, 1000, 20.0, TOKENS)


@dataclass(frozen=True)
class Group:
    """One server configuration and the cells run against it while it is up."""

    key: str
    server: str  # "direct", "riposte" or "ogx"
    store: str | None  # the database behind `store: true`
    workers: int
    scenarios: tuple[Scenario, ...]

    @property
    def label(self) -> str:
        if self.server == "direct":
            return "direct (no gateway)"
        name = "Riposte" if self.server == "riposte" else "OGX 1.5.0"
        workers = f", {self.workers} workers" if self.workers > 1 else ""
        return f"{name} ({self.store}{workers})"


def _stream_grid() -> tuple[Scenario, ...]:
    return tuple(Scenario(Mode.STREAM, c, d, TOKENS) for d in DELAYS_MS for c in CONCURRENCY)


def _full_grid() -> tuple[Scenario, ...]:
    json_cells = tuple(Scenario(Mode.JSON, c, 0.0, TOKENS) for c in (1, 16, 64))
    tool_cells = tuple(Scenario(Mode.TOOL, c, 0.0, TOKENS) for c in (1, 16))
    return _stream_grid() + json_cells + tool_cells


def _multi_worker_cells() -> tuple[Scenario, ...]:
    # 256 paced streams need more than one core of Riposte's CPU: where a second worker pays.
    return (Scenario(Mode.STREAM, 64, 0.0, TOKENS), Scenario(Mode.STREAM, 64, 5.0, TOKENS),
            Scenario(Mode.STREAM, 256, 5.0, TOKENS), Scenario(Mode.JSON, 64, 0.0, TOKENS),
            Scenario(Mode.TOOL, 16, 0.0, TOKENS))


def groups(*, with_postgres: bool, with_ogx: bool) -> list[Group]:
    riposte_sqlite = (*_full_grid(), Scenario(Mode.STREAM, 64, 0.0, TOKENS, store=False), MANY_SLOW_STREAMS)
    plan = [
        Group("direct", "direct", None, 1, (*_full_grid(), MANY_SLOW_STREAMS)),
        Group("riposte-sqlite", "riposte", "sqlite", 1, riposte_sqlite),
        Group(f"riposte-sqlite-{MULTI_WORKERS}w", "riposte", "sqlite", MULTI_WORKERS, _multi_worker_cells()),
    ]
    if with_postgres:
        postgres_cells = (Scenario(Mode.STREAM, 1, 0.0, TOKENS), Scenario(Mode.STREAM, 64, 0.0, TOKENS),
                          Scenario(Mode.STREAM, 64, 5.0, TOKENS), Scenario(Mode.JSON, 16, 0.0, TOKENS),
                          Scenario(Mode.TOOL, 16, 0.0, TOKENS))
        plan += [Group("riposte-postgres", "riposte", "postgres", 1, postgres_cells),
                 Group(f"riposte-postgres-{MULTI_WORKERS}w", "riposte", "postgres", MULTI_WORKERS,
                       _multi_worker_cells())]
    if with_ogx:
        ogx_cells = (*_stream_grid(), Scenario(Mode.JSON, 1, 0.0, TOKENS), Scenario(Mode.JSON, 16, 0.0, TOKENS),
                     Scenario(Mode.TOOL, 1, 0.0, TOKENS))
        plan.append(Group("ogx", "ogx", "sqlite", 1, ogx_cells))
    return plan


def quick(plan: list[Group]) -> list[Group]:
    """A smoke run: one streaming cell and one of each other mode per group."""
    keep = {Scenario(Mode.STREAM, 16, 0.0, TOKENS), Scenario(Mode.STREAM, 16, 5.0, TOKENS),
            Scenario(Mode.JSON, 16, 0.0, TOKENS), Scenario(Mode.TOOL, 16, 0.0, TOKENS),
            Scenario(Mode.STREAM, 64, 0.0, TOKENS)}
    return [Group(g.key, g.server, g.store, g.workers, tuple(s for s in g.scenarios if s in keep)) for g in plan]
