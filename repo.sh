#!/usr/bin/env bash
# lift3d's one entry point, after Kit's repo.sh convention:
#   ./repo.sh demo     reconstruct the bundled sample photo into a USD stage (+ preview PNG)
#   ./repo.sh test     run the test suite (unit, gradient checks, end-to-end, Kit stand-ins)
#   ./repo.sh bench    kernel benchmark against peers (installs the optional peers), then the end-to-end
#                      benchmark; `bench kernels ARGS` or `bench e2e ARGS` runs one of them
#   ./repo.sh eval     evaluation harness on ../shared/eval
#   ./repo.sh train    train the vehicle predictor (`train --quick`: a tiny run that checks every step)
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
    # Reinstall only when pyproject.toml changes or an extra not installed yet is asked for; the
    # stamp holds the pyproject.toml hash, then the extras installed against it (one set a line).
    local stamp="$VENV/.lift3d-installed"
    local hash extra missing=""
    hash="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
    if [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" != "$hash" ]; then
        rm -f "$stamp"
    fi
    for extra in ${extras//,/ }; do
        if [ ! -f "$stamp" ] || ! tail -n +2 "$stamp" | tr ',' '\n' | grep -qx -- "$extra"; then
            missing=1
        fi
    done
    if [ -n "$missing" ]; then
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
    warm_kernels "$stamp"
}

# Compile every Warp kernel module once after an installation or a change to kernels/, so no
# reconstruction waits for a compiler (`lift3d warmup`; LIFT3D_SKIP_WARMUP=1 skips it).
warm_kernels() {
    local warm="$VENV/.lift3d-warm" key
    [ "${LIFT3D_SKIP_WARMUP:-0}" = "1" ] && return 0
    key="$(cat "$ROOT"/kernels/*.py "$1" | sha256sum | cut -c1-16)"
    if [ ! -f "$warm" ] || [ "$(cat "$warm")" != "$key" ]; then
        echo "repo.sh: compiling the Warp kernels (lift3d warmup)" >&2
        if "$PY" -m lift3d.cli warmup >"$VENV/warmup.log" 2>&1; then
            echo "$key" > "$warm"
        else
            tail -n 20 "$VENV/warmup.log" >&2
            echo "repo.sh: warmup failed (the first reconstruction will compile); log in $VENV/warmup.log" >&2
        fi
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
        case "${1:-}" in
            kernels) shift; exec "$PY" "$ROOT/tools/bench_kernels.py" "$@" ;;
            e2e) shift; exec "$PY" "$ROOT/tools/bench_e2e.py" "$@" ;;
        esac
        "$PY" "$ROOT/tools/bench_kernels.py" "$@"
        exec "$PY" "$ROOT/tools/bench_e2e.py"
        ;;
    eval)
        ensure_env "test"
        exec "$PY" "$ROOT/tools/evaluate.py" "$@"
        ;;
    train)
        ensure_env "test"
        exec "$PY" -m lift3d.cli train "$@"
        ;;
    build)
        ensure_env "test"
        exec "$PY" "$ROOT/tools/link_build.py" "$@"
        ;;
    *)
        sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
        [ "$verb" = "help" ] || exit 2
        ;;
esac
