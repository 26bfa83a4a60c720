#!/usr/bin/env bash
# The test command (README, .ci/run). On a fresh Debian machine as root it installs what it
# needs (npm packages here; Debian packages in estate.sh up), checks types and that dist/ is
# fresh, brings up the estate, runs every test, and tears the estate down, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

npm ci --no-audit --no-fund --loglevel=error
npm run --silent typecheck
bash scripts/check-dist.sh

trap 'bash test/estate/estate.sh down' EXIT
bash test/estate/estate.sh up

report=$(mktemp --suffix=.json)
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?
# One plain closing line, whatever the runner printed above it.
node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)' "$report" || status=1
rm -f "$report"
exit "$status"
