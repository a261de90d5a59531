#!/usr/bin/env bash
# Set up a virtual environment (first run only) and run the test suite.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k sarif   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,embed,train]'
exec .venv/bin/python -m pytest "$@"
