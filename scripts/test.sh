#!/usr/bin/env bash
# The project's tests (set-up included): pytest on tests/, real JAX, torch and autograd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
