#!/usr/bin/env bash
# Create .venv (if missing) and install diffinterface with every backend, the suite's
# table and plot tools (pandas, matplotlib), the test tools and the docs tools (MkDocs),
# at the versions in constraints.txt (torch 2.13.0 is the CPU build on this kind of machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -c constraints.txt -e ".[all,suite,test,docs]"
