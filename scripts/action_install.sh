#!/usr/bin/env bash
# The GitHub Action's install step: labellint from the action's own checkout (the version the
# workflow pinned with `uses: labellint/labellint@REF`), with the extras asked for.
set -euo pipefail
spec="$GITHUB_ACTION_PATH"
if [ -n "${INPUT_EXTRAS:-}" ]; then
  if ! [[ "$INPUT_EXTRAS" =~ ^[A-Za-z0-9_,-]+$ ]]; then
    echo "::error title=labellint::extras must be names separated by commas, not '$INPUT_EXTRAS'" >&2
    exit 2
  fi
  spec="$spec[$INPUT_EXTRAS]"
fi
python -m pip install --disable-pip-version-check --quiet "$spec"
