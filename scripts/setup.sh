#!/usr/bin/env bash
# Create ./.venv (if missing) and install evalhub into it with the given extras.
# torch is installed first and pinned: a looser request would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
target="."; [ -n "$extras" ] && target=".[$extras]"
stamp=".venv/.evalhub-installed-${extras:-base}-$(sha256sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e "$target"
  touch "$stamp"
fi
