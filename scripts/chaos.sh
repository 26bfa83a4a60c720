#!/usr/bin/env bash
# npm run chaos: sets up like the test command, then causes each fault for real and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
bash test/estate/estate.sh up
npx tsc -p tsconfig.tools.json
node .build/scripts/chaos.js
