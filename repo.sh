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
    # Reinstall only when the dependency description or the requested extras change.
    local stamp="$VENV/.lift3d-installed"
    local want
    want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-$extras"
    if [ ! -f "$stamp" ] || ! grep -qx -- "$want" "$stamp"; then
        echo "repo.sh: installing lift3d[$extras] (torch pinned to the local 2.13.0 CPU build)" >&2
        # torch first and exactly pinned, so nothing later resolves a CUDA build.
        "$PY" -m pip install --quiet "torch==2.13.0"
        "$PY" -m pip install --quiet -e "$ROOT[$extras]"
        echo "$want" > "$stamp"
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
