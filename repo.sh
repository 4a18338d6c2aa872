#!/usr/bin/env bash
# lift3d's one entry point, after Kit's repo.sh convention:
#   ./repo.sh demo     reconstruct the bundled sample photo into a USD stage (+ preview PNG)
#   ./repo.sh test     run the test suite (unit, gradient checks, end-to-end, Kit stand-ins)
#   ./repo.sh bench    kernel benchmark against peers (installs the optional peers)
#   ./repo.sh eval     evaluation harness on ../shared/eval
#   ./repo.sh build    link kernels/ and config/ into the extension folder (what premake5.lua does)
# Each verb creates .venv on first use and installs the package with its pinned dependencies.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${LIFT3D_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

ensure_env() {
    local extras="$1"
    if [ ! -x "$PY" ]; then
        echo "repo.sh: creating virtual environment in $VENV" >&2
        python3 -m venv "$VENV"
        "$PY" -m pip install --quiet --upgrade pip
    fi
    # Reinstall only when pyproject.toml changes or new extras are asked for; the stamp
    # holds one line per extras set installed against the current pyproject.toml.
    local stamp="$VENV/.lift3d-installed"
    local hash
    hash="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
    if [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" != "$hash" ]; then
        rm -f "$stamp"
    fi
    if [ ! -f "$stamp" ] || ! grep -qx -- "$extras" "$stamp"; then
        echo "repo.sh: installing lift3d[$extras] (torch pinned to the local 2.13.0 CPU build)" >&2
        local log="$VENV/pip-install.log"
        # torch first and exactly pinned, so nothing later resolves a CUDA build.
        if ! { "$PY" -m pip install "torch==2.13.0" && "$PY" -m pip install -e "$ROOT[$extras]"; } >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            echo "repo.sh: installation failed; full log in $log" >&2
            exit 1
        fi
        [ -f "$stamp" ] || echo "$hash" > "$stamp"
        echo "$extras" >> "$stamp"
    fi
}

verb="${1:-help}"
shift || true
case "$verb" in
    demo)
        ensure_env "test"
        exec "$PY" "$ROOT/tools/demo.py" "$@"
        ;;
    test)
        ensure_env "test,ray"
        cd "$ROOT"
        exec "$PY" -m pytest "$@"
        ;;
    bench)
        ensure_env "test,bench"
        exec "$PY" "$ROOT/tools/bench_kernels.py" "$@"
        ;;
    eval)
        ensure_env "test"
        exec "$PY" "$ROOT/tools/evaluate.py" "$@"
        ;;
    build)
        ensure_env "test"
        exec "$PY" "$ROOT/tools/link_build.py" "$@"
        ;;
    *)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        [ "$verb" = "help" ] || exit 2
        ;;
esac
