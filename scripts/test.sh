#!/usr/bin/env bash
# The project's tests (set-up included): pytest on tests/, real JAX, torch and autograd, in two
# worker processes (pytest-xdist; CI has two cores). Arguments go to pytest (-n 0: one process).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -n 2 "$@"
