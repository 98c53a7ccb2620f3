#!/usr/bin/env bash
# Install evalhub into ./.venv and run the main job: `evalhub demo` on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh engines
exec .venv/bin/evalhub demo "$@"
