#!/usr/bin/env bash
# The GitHub Action's check step: lint, keep the reports, say the outcome in the step outputs and
# the run's summary. The exit status is given to the action's last step (after the SARIF upload),
# so this step succeeds whatever labellint finds.
set -uo pipefail

outdir="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/labellint"
mkdir -p "$outdir"
sarif="$outdir/labellint.sarif"
json="$outdir/labellint.json"
summary="$outdir/summary.md"
rm -f "$sarif" "$json" "$summary"

# --diff-base: the input, else the pull request's base branch (GITHUB_BASE_REF, set on
# pull_request events), fetched when the checkout (depth 1 by default) lacks it
base="${INPUT_DIFF_BASE:-}"
if [ -z "$base" ] && [ -n "${GITHUB_BASE_REF:-}" ]; then
  base="origin/$GITHUB_BASE_REF"
  if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null 2>&1; then
    git fetch --no-tags --depth=1 origin \
      "+refs/heads/$GITHUB_BASE_REF:refs/remotes/origin/$GITHUB_BASE_REF" >&2 \
      || echo "::warning title=labellint::could not fetch the base branch $GITHUB_BASE_REF" >&2
  fi
fi

# paths: split on spaces, each a glob pattern (data/**/*.json) or a plain path
read -r -a patterns <<< "${INPUT_PATHS:-.}"
shopt -s nullglob globstar
paths=()
for pattern in "${patterns[@]}"; do
  matches=($pattern)
  if [ ${#matches[@]} -gt 0 ]; then paths+=("${matches[@]}"); else paths+=("$pattern"); fi
done
shopt -u nullglob globstar
read -r -a extra <<< "${INPUT_ARGS:-}"
args=(check "${paths[@]}" --output-format github
      --report "sarif:$sarif" --report "json:$json" --report "markdown:$summary")
[ -n "$base" ] && args+=(--diff-base "$base")
[ -n "${INPUT_FAIL_ON:-}" ] && args+=(--fail-on "$INPUT_FAIL_ON")
[ -n "${INPUT_IMAGES:-}" ] && args+=(--images "$INPUT_IMAGES")
args+=("${extra[@]}")

labellint "${args[@]}"
code=$?

findings=""
if [ -f "$json" ]; then
  findings=$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["summary"]["findings"])' "$json" \
             2>/dev/null || true)
fi
{
  echo "exit-code=$code"
  echo "findings=$findings"
  [ -f "$sarif" ] && echo "sarif-file=$sarif"
  [ -f "$json" ] && echo "json-file=$json"
} >> "${GITHUB_OUTPUT:-/dev/null}"

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  if [ -f "$summary" ]; then
    cat "$summary" >> "$GITHUB_STEP_SUMMARY"
  else
    printf '### labellint could not run\n\nExit status %s: the error is in the log of the step "labellint check".\n' \
      "$code" >> "$GITHUB_STEP_SUMMARY"
  fi
fi
exit 0
