# Shared by scripts/serve and scripts/test: make .venv and install the project into it, once
# per change of pyproject.toml. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RIPOSTE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

ensure_env() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.riposte-installed-$extras"
    local digest
    digest="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$extras]"
        echo "$digest" > "$stamp"
    fi
    # shellcheck disable=SC1091
    . "$VENV/bin/activate"
}
