#!/usr/bin/env bash
# The main job: differentiate an example model with every installed backend, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/compare_backends.py "$@"
