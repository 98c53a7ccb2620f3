#!/usr/bin/env bash
# Install what the tests need into ./.venv and run the test suite (slow tests excluded).
# Extra arguments go to pytest: `scripts/test.sh -m slow` runs only the slow ones,
# `scripts/test.sh -m ""` runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"
