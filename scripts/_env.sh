# Shared by scripts/serve and scripts/test: make .venv and install the project into it, once
# per change of pyproject.toml. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RIPOSTE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

pip_quiet() {
    # Drop pip's notes about unreachable extra index paths; keep real errors.
    "$VENV/bin/python" -m pip --quiet "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}

ensure_env() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.riposte-installed-$extras"
    local digest
    digest="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        # torch first, pinned: on these machines 2.13.0 is the local CPU build, and an unpinned
        # resolution through sentence-transformers would pull gigabytes of CUDA packages.
        pip_quiet install --upgrade pip
        pip_quiet install torch==2.13.0
        pip_quiet install -e "$ROOT[$extras]"
        echo "$digest" > "$stamp"
    fi
    # shellcheck disable=SC1091
    . "$VENV/bin/activate"
}
