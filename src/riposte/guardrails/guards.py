"""Guardrails at work: the configured guards, the ones a turn runs, and the two stages.

A guard reaches its model through the provider router, so the same base URL, credentials and
deadlines apply, and through the record/replay layer, so replay mode answers moderation calls
from recordings like any other upstream call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from riposte.errors import RiposteError
from riposte.guardrails.lookahead import LookAhead
from riposte.guardrails.selection import requested_guardrails
from riposte.guardrails.settings import GuardConfig, GuardrailSettings
from riposte.guardrails.verdicts import (
    LLAMA_GUARD_3_CATEGORIES,
    SAFE,
    MalformedVerdict,
    Stage,
    Verdict,
    context_tail,
    guarded_input_text,
    llama_guard_body,
    llama_guard_prompt,
    llama_guard_verdict,
    moderation_body,
    moderation_verdict,
    pieces,
    refusal_text,
)
from riposte.inference.router import ModelNames, ModelRouter
from riposte.inference.upstream import ChunkBatch
from riposte.observability.metrics import GUARDRAIL_CHECKS

logger = logging.getLogger(__name__)


class GuardrailUnavailableError(RiposteError):
    """A guard could not give a verdict and fails closed: the response fails rather than go out
    unchecked."""

    status_code = 503
    error_type = "server_error"
    default_code = "guardrail_unavailable"


class OutputFlagged(Exception):
    """Raised out of the moderated chunk stream: the held-back text was flagged and never released."""

    def __init__(self, refusal: str) -> None:
        super().__init__(refusal)
        self.refusal = refusal


@dataclass(frozen=True)
class GuardCheck:
    """One guard's check of one text, as the inspector's trace keeps it (engine/turn_trace.py)."""

    guard: str
    guard_type: str
    stage: Stage
    # The text the guard read: the input, or the output window held back while it was checked.
    text: str
    started_at: float
    duration_ms: float
    # passed, flagged, failed_open or failed_closed (as riposte_guardrail_checks_total counts them).
    outcome: str
    categories: tuple[str, ...] = ()
    error: str | None = None


class Guard:
    """One configured guardrail, bound to the provider that serves its model."""

    def __init__(self, config: GuardConfig, router: ModelRouter) -> None:
        self.config = config
        try:
            self._route = router.resolve(config.model)
        except RiposteError as exc:  # at start-up, not at the first request that names it
            raise _unserved(config, exc) from exc
        self._categories = config.categories or LLAMA_GUARD_3_CATEGORIES

    @property
    def name(self) -> str:
        return self.config.name

    async def verdict(self, stage: Stage, texts: list[str], user_text: str | None = None) -> Verdict:
        """One verdict over all `texts` (pieces of one text): flagged when any piece is."""
        upstream, model = self._route.upstream, self._route.upstream_model
        if self.config.type == "moderations":
            body = moderation_body(model, texts[0] if len(texts) == 1 else texts)
            return moderation_verdict(await upstream.moderations(body))
        for text in texts:
            prompt = llama_guard_prompt(stage, text, self._categories, user_text)
            verdict = llama_guard_verdict(await upstream.chat(llama_guard_body(model, prompt)), self._categories)
            if verdict.flagged:
                return verdict
        return SAFE


@dataclass
class TurnGuard:
    """The guards one turn runs, in order; the first that flags decides the refusal."""

    guards: tuple[Guard, ...]
    settings: GuardrailSettings
    response_id: str = ""
    # Told of every check when the turn is traced for the inspector; None: nothing is noted.
    on_check: Callable[[GuardCheck], None] | None = None
    # The input the turn answers, shown to guard models as context for the output stage.
    _user_text: str = field(default="", init=False)

    async def check_input(self, instructions: str | None, messages: Sequence[Mapping[str, Any]]) -> str | None:
        """The refusal text when the input is flagged, else None."""
        self._user_text = guarded_input_text(instructions, messages)
        if not self._user_text:
            return None
        return await self._first_flag("input", self._user_text)

    async def moderated(self, batches: AsyncGenerator[ChunkBatch]) -> AsyncGenerator[ChunkBatch]:
        """The upstream chunks, answer text held back until checked (see lookahead.py); raises
        `OutputFlagged` instead of releasing flagged text. What was released before a check goes
        out before it, as it would chunk by chunk."""
        window = LookAhead(self.settings.window_chars, self.settings.overlap_chars)
        async with aclosing(batches):
            async for batch in batches:
                ready: ChunkBatch = []
                for chunk in batch:
                    ready += window.hold(chunk)
                    if window.check_due:
                        if ready:
                            yield ready
                            ready = []
                        await self._check_output(window.text)
                        ready += window.passed()
                if ready:
                    yield ready
        if window.needs_final_check:
            await self._check_output(window.text)
        last = window.passed(final=True)
        if last:
            yield last

    async def _check_output(self, text: str) -> None:
        refusal = await self._first_flag("output", text)
        if refusal is not None:
            raise OutputFlagged(refusal)

    async def _first_flag(self, stage: Stage, text: str) -> str | None:
        texts = pieces(text, self.settings.max_check_chars, self.settings.overlap_chars)
        context = context_tail(self._user_text, self.settings.max_check_chars // 4) if stage == "output" else None
        for guard in self.guards:
            started_at, started = time.time(), time.perf_counter()
            try:
                verdict = await guard.verdict(stage, texts, context)
            except (RiposteError, MalformedVerdict) as exc:
                reason = exc.message if isinstance(exc, RiposteError) else str(exc)
                outcome = "failed_open" if guard.config.on_error == "fail_open" else "failed_closed"
                self._note(GuardCheck(guard.name, guard.config.type, stage, text, started_at,
                                      _elapsed_ms(started), outcome, error=reason))
                self._guard_failed(guard, stage, reason)
                continue
            outcome = "flagged" if verdict.flagged else "passed"
            self._note(GuardCheck(guard.name, guard.config.type, stage, text, started_at, _elapsed_ms(started),
                                  outcome, verdict.categories))
            GUARDRAIL_CHECKS.labels(guard.name, stage, outcome).inc()
            if verdict.flagged:
                logger.info("response %s: guardrail %s flagged the %s (%s)", self.response_id, guard.name, stage,
                            ", ".join(verdict.categories) or "no categories given")
                return refusal_text(guard.name, stage, verdict)
        return None

    def _note(self, check: GuardCheck) -> None:
        if self.on_check is not None:
            self.on_check(check)

    def _guard_failed(self, guard: Guard, stage: Stage, reason: str) -> None:
        if guard.config.on_error == "fail_open":
            GUARDRAIL_CHECKS.labels(guard.name, stage, "failed_open").inc()
            logger.warning("response %s: guardrail %s could not check the %s and fails open, so it goes "
                           "unchecked: %s", self.response_id, guard.name, stage, reason)
            return
        GUARDRAIL_CHECKS.labels(guard.name, stage, "failed_closed").inc()
        raise GuardrailUnavailableError(
            f"guardrail '{guard.name}' could not check the {stage}, so the response was stopped "
            f"(the guardrail fails closed): {reason}")


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


class GuardRegistry:
    """The server's guardrails by name, and the server default that every turn runs."""

    def __init__(self, guards: Mapping[str, Guard], settings: GuardrailSettings) -> None:
        self._guards = dict(guards)
        self._settings = settings

    @classmethod
    def from_settings(cls, settings: GuardrailSettings, router: ModelRouter) -> GuardRegistry:
        guards = {config.name: Guard(config, router) for config in settings.guards}
        return cls(guards, settings)

    @staticmethod
    def check_models(settings: GuardrailSettings, names: ModelNames) -> None:
        """Raise `ValueError`, naming the guard, for the first guard whose model no provider serves:
        `riposte serve` checks before the server starts, so the mistake is one line, not a failed
        start-up's traceback."""
        for config in settings.guards:
            try:
                names.served(config.model)
            except RiposteError as exc:
                raise _unserved(config, exc) from exc

    @classmethod
    def empty(cls) -> GuardRegistry:
        return cls({}, GuardrailSettings())

    def for_turn(self, guardrails: Sequence[Any] | None, shields: Sequence[Any] | None) -> TurnGuard | None:
        """The guards a request runs (the server default, then the ones it names), or None: no
        guardrail applies and the turn runs exactly as without this module. Unknown names are a 400."""
        names = list(self._settings.default)
        for name in requested_guardrails(guardrails, shields, self._guards.keys()):
            if name not in names:
                names.append(name)
        if not names:
            return None
        return TurnGuard(tuple(self._guards[name] for name in names), self._settings)


def _unserved(config: GuardConfig, exc: RiposteError) -> ValueError:
    return ValueError(f"guardrail '{config.name}': {exc.message}")
