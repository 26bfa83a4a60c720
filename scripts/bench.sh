#!/usr/bin/env bash
# npm run bench: sets up like the test command, with 8 staging hosts, and prints the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
bash test/estate/estate.sh up --staging 8
npx tsc -p tsconfig.tools.json
node .build/scripts/bench.js
