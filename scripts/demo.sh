#!/usr/bin/env bash
# The README's main command: on a fresh Debian machine as root, set up (npm packages; Debian
# packages and services through estate.sh), then run the whole release on the estate.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
bash test/estate/estate.sh up
npx tsc -p tsconfig.tools.json
node .build/scripts/demo.js
