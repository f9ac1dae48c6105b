"""Maps public model ids (`provider/model`) to a provider's upstream and its own model name."""

from __future__ import annotations

from dataclasses import dataclass

from riposte.config import InferenceMode, ProviderConfig, Settings
from riposte.errors import ModelNotFoundError, UpstreamError
from riposte.inference.openai_compat import OpenAICompatibleUpstream
from riposte.inference.record_replay import RecordReplayUpstream
from riposte.inference.recording_store import RecordingStore
from riposte.inference.upstream import Upstream


@dataclass(frozen=True)
class Route:
    provider: ProviderConfig
    upstream_model: str
    upstream: Upstream


class ModelRouter:
    def __init__(self, settings: Settings, recordings: RecordingStore | None = None) -> None:
        self._providers = {p.name: p for p in settings.providers}
        self._default = settings.default_provider or settings.providers[0].name
        self._upstreams: dict[str, Upstream] = {}
        self.recordings = recordings
        for provider in settings.providers:
            self._upstreams[provider.name] = _build_upstream(provider, settings.inference_mode, recordings)

    def resolve(self, model: str) -> Route:
        provider_name, upstream_model = self._split(model)
        provider = self._providers[provider_name]
        if provider.models is not None and upstream_model not in provider.models:
            raise ModelNotFoundError(
                f"The model '{model}' does not exist or is not served by provider '{provider_name}'.",
                param="model",
            )
        return Route(provider=provider, upstream_model=upstream_model, upstream=self._upstreams[provider_name])

    def _split(self, model: str) -> tuple[str, str]:
        if not model:
            raise ModelNotFoundError("The model '' does not exist.", param="model")
        prefix, separator, rest = model.partition("/")
        if separator:
            if prefix in self._providers and rest:
                return prefix, rest
            raise ModelNotFoundError(
                f"The model '{model}' does not exist: no provider named '{prefix}' "
                f"(known providers: {', '.join(sorted(self._providers))}).",
                param="model",
            )
        return self._default, model

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
        except UpstreamError:
            return []

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
