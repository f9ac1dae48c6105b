# Shared by scripts/serve and scripts/test: make .venv and install the project into it, once
# per change of pyproject.toml. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RIPOSTE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

say() { echo "riposte: $*" >&2; }

pip_shown() {
    # pip's own progress, minus its notes about unreachable extra index paths; errors stay.
    "$VENV/bin/python" -m pip --disable-pip-version-check "$@" \
        > >(grep -v -e "is ignored: it is neither" -e "^Requirement already satisfied" >&2) \
        2> >(grep -v "is ignored: it is neither" >&2)
}

ensure_env() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        say "first run: creating the virtualenv $VENV with $("$PYTHON" --version 2>&1)"
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.riposte-installed-$extras"
    local digest
    digest="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        # torch first, pinned: on these machines 2.13.0 is the local CPU build, and an unpinned
        # resolution through sentence-transformers would pull gigabytes of CUDA packages.
        say "installing dependencies into $VENV (once per change of pyproject.toml; a few minutes the first time)"
        pip_shown install --quiet --upgrade pip
        say "step 1/2: PyTorch 2.13.0, CPU build: the local embedding model behind vector stores and file_search"
        pip_shown install torch==2.13.0
        say "step 2/2: Riposte and its dependencies ($extras extras)"
        pip_shown install -e "$ROOT[$extras]"
        echo "$digest" > "$stamp"
        say "installed; without these scripts, run $VENV/bin/riposte (or: source $VENV/bin/activate)"
    fi
    # shellcheck disable=SC1091
    . "$VENV/bin/activate"
}
