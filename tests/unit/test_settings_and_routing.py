"""Settings come from YAML, then RIPOSTE_* variables, then CLI flags; routing maps provider/model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from riposte.config import InferenceMode, ProviderConfig, Settings, SettingsError, load_settings
from riposte.errors import ModelNotFoundError
from riposte.inference.router import ModelRouter


def test_without_providers_the_openai_environment_defines_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    [provider] = Settings().providers
    assert (provider.name, provider.base_url, provider.resolved_api_key()) == (
        "openai", "http://127.0.0.1:9999/v1", "sk-test")


def test_yaml_then_environment_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "riposte.yaml"
    config.write_text("port: 9000\ninference_mode: replay\nproviders:\n"
                      "  - {name: vllm, base_url: 'http://127.0.0.1:8000/v1', models: [llama]}\n")
    monkeypatch.setenv("RIPOSTE_PORT", "9100")
    settings = load_settings(config, {"inference_mode": "record"})
    assert settings.port == 9100
    assert settings.inference_mode is InferenceMode.RECORD
    assert settings.default_provider == "vllm"


def test_bad_config_is_a_settings_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("providers: [{name: a}]\n")
    with pytest.raises(SettingsError):
        load_settings(config)


def router(*providers: ProviderConfig) -> ModelRouter:
    return ModelRouter(Settings(providers=list(providers)))


def test_provider_prefix_picks_the_provider_and_is_stripped() -> None:
    routes = router(ProviderConfig(name="openai", base_url="http://a/v1"),
                    ProviderConfig(name="vllm", base_url="http://b/v1"))
    route = routes.resolve("vllm/meta-llama/Llama-3.1-8B")
    assert (route.provider.name, route.upstream_model) == ("vllm", "meta-llama/Llama-3.1-8B")
    assert routes.resolve("gpt-4o").provider.name == "openai"


def test_unknown_provider_and_disallowed_model_are_model_not_found() -> None:
    routes = router(ProviderConfig(name="openai", base_url="http://a/v1", models=["gpt-4o"]))
    for model in ("nope/gpt-4o", "openai/gpt-5", "gpt-5"):
        with pytest.raises(ModelNotFoundError) as caught:
            routes.resolve(model)
        assert caught.value.code == "model_not_found" and caught.value.param == "model"


def test_a_slashed_model_id_that_names_no_provider_goes_whole_to_the_default() -> None:
    routes = router(ProviderConfig(name="vllm", base_url="http://b/v1"))
    route = routes.resolve("meta-llama/Llama-3.1-8B-Instruct")
    assert (route.provider.name, route.upstream_model) == ("vllm", "meta-llama/Llama-3.1-8B-Instruct")


def _readme_yaml_blocks() -> list[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return re.findall(r"```yaml\n(.*?)```", readme, re.S)


def test_every_yaml_settings_block_in_the_readme_is_valid() -> None:
    blocks = [block for block in _readme_yaml_blocks() if block.startswith("providers:")]
    assert blocks
    for block in blocks:
        Settings.model_validate(yaml.safe_load(block))


def test_the_readme_shows_the_real_provider_deadline_defaults() -> None:
    [block] = [b for b in _readme_yaml_blocks() if "total_timeout_seconds" in b]
    [documented] = yaml.safe_load(block)["providers"]
    defaults = ProviderConfig(name="x", base_url="http://x/v1")
    for key, value in documented.items():
        if key.endswith("_seconds"):
            assert getattr(defaults, key) == value, key


def test_the_readme_context_block_is_valid() -> None:
    blocks = [block for block in _readme_yaml_blocks() if block.startswith("context:")]
    assert len(blocks) == 1
    settings = Settings.model_validate(yaml.safe_load(blocks[0]))
    assert settings.context.windows["llama3.2"] == 8192
