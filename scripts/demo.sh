#!/usr/bin/env bash
# Set up a virtual environment (first run only), build the demo dataset and lint it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[embed]'
.venv/bin/labellint demo demo
# The embedding rule (LL501) needs an ONNX backbone: $LABELLINT_BACKBONE, else the project's
# shared MobileNetV2 when ../shared is there; without one it is listed as skipped.
model=../shared/models/mobilenetv2-12-int8-embed.onnx
if [ -z "${LABELLINT_BACKBONE:-}" ] && [ -f "$model" ]; then
  export LABELLINT_BACKBONE=$model
fi
set +e
.venv/bin/labellint check demo/annotations.json --images demo/images \
  --output-format html --output-file demo/review.html "$@"
status=$?
set -e
# Which seeded defects the default settings find (the class swaps need the images and a backbone):
# measured here, on the same data, and written into demo/DEFECTS.md (no claim there is by hand).
.venv/bin/labellint check demo/annotations.json --images demo/images --output-format json \
  --output-file demo/findings.json --exit-zero >/dev/null
.venv/bin/python -m labellint.demo record demo demo/findings.json
echo
echo "labellint exited with $status (1 = findings at or above the fail-on level; the demo has seeded defects: demo/DEFECTS.md)"
echo "review gallery: demo/review.html (open it in a browser; README: 'Fix, review, apply')"
[ "$status" -le 1 ]
