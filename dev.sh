#!/usr/bin/env bash
# Set-up and everyday commands. Each creates .venv and installs what it needs.
#   ./dev.sh demo    run the quick start: digits with 40 % label noise
#   ./dev.sh test    lint and run the test suite (what CI runs)
#   ./dev.sh docs    build the documentation site into docs/_build/html
#   ./dev.sh bench   run the quality and speed benchmarks (long)
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
PY="$VENV/bin/python"

ensure_venv() {
    local extras="$1"
    if [ ! -x "$PY" ]; then
        python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.installed-$extras"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        # torch and torchvision first, pinned: an unpinned request would pull a
        # multi-GB CUDA build from PyPI on machines without a local copy.
        "$PY" -m pip install --quiet --upgrade pip
        "$PY" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
        "$PY" -m pip install --quiet -e ".[$extras]"
        touch "$stamp"
    fi
}

case "${1:-}" in
    demo)
        ensure_venv test
        "$PY" examples/plot_quickstart.py
        ;;
    test)
        ensure_venv test
        shift
        # Lint is a gate, not a hope: the same command locally and in CI.
        "$PY" -m ruff check .
        "$PY" -m pytest -n 2 -q "$@"
        ;;
    docs)
        ensure_venv docs
        "$PY" -m sphinx -W --keep-going -b html docs docs/_build/html
        echo "docs written to docs/_build/html/index.html"
        ;;
    bench)
        ensure_venv benchmarks
        "$PY" -m benchmarks.quality
        "$PY" -m benchmarks.speed.speed
        ;;
    *)
        sed -n '2,6p' "$0"
        exit 2
        ;;
esac
