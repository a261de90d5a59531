#!/usr/bin/env bash
# Set up a virtual environment (first run only) and run the test suite.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k sarif   # extra arguments go to pytest
# The review-gallery test drives Debian's headless Chromium; as root on Debian/Ubuntu this script
# installs it (packages chromium, chromium-driver) when missing. Elsewhere that test skips and says why.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,embed,train,ray]'
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian chromium for the review-gallery test" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
    || echo "could not install chromium: the gallery browser test will skip" >&2
fi
# Two workers or more (one per core, at most 4): the session's detector training is single-threaded
# and runs once in one worker while the others run the rest (tests/test_gate_fixtures.shared_runs).
workers=$(nproc 2>/dev/null || echo 2)
[ "$workers" -lt 2 ] && workers=2
[ "$workers" -gt 4 ] && workers=4
exec .venv/bin/python -m pytest -n "$workers" "$@"
