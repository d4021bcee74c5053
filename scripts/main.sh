#!/usr/bin/env bash
# The main job: the cross-backend test and benchmark suite on its default scenarios
# (correctness table, benchmark table, plot in results/benchmark.png). Options: --help.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m diffinterface.testsuite "$@"
