"""Maps public model ids (`provider/model`) to a provider's upstream and its own model name."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from riposte.config import InferenceMode, ProviderConfig, Settings
from riposte.errors import ModelNotFoundError, UpstreamError
from riposte.inference.openai_compat import OpenAICompatibleUpstream
from riposte.inference.record_replay import RecordReplayUpstream
from riposte.inference.recording_store import RecordingStore
from riposte.inference.upstream import Upstream

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    provider: ProviderConfig
    upstream_model: str
    upstream: Upstream


class ModelNames:
    """Which provider serves a public model id, and under which name: the settings alone, no
    upstream, so a configured model (a guard's) can be checked before the server starts."""

    def __init__(self, settings: Settings) -> None:
        self.providers = {p.name: p for p in settings.providers}
        self._default = settings.default_provider or settings.providers[0].name

    def served(self, model: str) -> tuple[ProviderConfig, str]:
        """The provider and its name for `model`; ModelNotFoundError when no provider serves it."""
        provider_name, upstream_model = self._split(model)
        provider = self.providers[provider_name]
        if provider.models is not None and upstream_model not in provider.models:
            raise ModelNotFoundError(
                f"The model '{model}' does not exist or is not served by provider '{provider_name}'.",
                param="model",
            )
        return provider, upstream_model

    def _split(self, model: str) -> tuple[str, str]:
        """`provider/model` picks a provider and strips the prefix; any other id, including one
        with slashes such as `meta-llama/Llama-3.1-8B-Instruct`, goes whole to the default."""
        if not model:
            raise ModelNotFoundError("The model '' does not exist.", param="model")
        prefix, separator, rest = model.partition("/")
        if separator and prefix in self.providers and rest:
            return prefix, rest
        return self._default, model


class ModelRouter:
    def __init__(self, settings: Settings, recordings: RecordingStore | None = None) -> None:
        self.names = ModelNames(settings)
        self._providers = self.names.providers
        self._upstreams: dict[str, Upstream] = {}
        self.recordings = recordings
        for provider in settings.providers:
            self._upstreams[provider.name] = _build_upstream(provider, settings.inference_mode, recordings)

    def resolve(self, model: str) -> Route:
        provider, upstream_model = self.names.served(model)
        return Route(provider=provider, upstream_model=upstream_model, upstream=self._upstreams[provider.name])

    async def list_model_ids(self) -> list[str]:
        ids: list[str] = []
        for name, provider in self._providers.items():
            for model in await self._provider_models(provider):
                ids.append(f"{name}/{model}")
        return ids

    async def _provider_models(self, provider: ProviderConfig) -> list[str]:
        if provider.models is not None:
            return list(provider.models)
        try:
            return await self._upstreams[provider.name].list_models()
        except UpstreamError as exc:
            # The listing goes on without it, but never silently.
            logger.warning("provider %s left out of /v1/models: %s", provider.name, exc.message)
            return []

    async def unreachable_providers(self) -> dict[str, str]:
        """Providers whose model listing fails, with the reason (allow-listed ones are not asked)."""
        failures: dict[str, str] = {}
        for name, provider in self._providers.items():
            if provider.models is None:
                try:
                    await self._upstreams[name].list_models()
                except UpstreamError as exc:
                    failures[name] = exc.message
        return failures

    async def aclose(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.aclose()


def _build_upstream(provider: ProviderConfig, mode: InferenceMode, recordings: RecordingStore | None) -> Upstream:
    live: Upstream | None = None if mode is InferenceMode.REPLAY else OpenAICompatibleUpstream(provider)
    if recordings is None:
        if live is None:
            raise ValueError("replay mode needs a recordings directory")
        return live
    return RecordReplayUpstream(live, mode, recordings, provider.base_url)
