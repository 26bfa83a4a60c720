#!/usr/bin/env bash
# npm run demo | bench | chaos: on a fresh Debian machine as root, set up like the test command
# (npm packages; Debian packages and services through estate.sh), then run scripts/NAME.ts on
# the estate. Arguments after NAME go to `estate.sh up` (bench: --staging 8).
#   bash scripts/on-estate.sh NAME [estate.sh up arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: on-estate.sh demo|bench|chaos [estate.sh up arguments]}
shift
npm ci --no-audit --no-fund --loglevel=error
bash test/estate/estate.sh up "$@"
npx tsc -p tsconfig.tools.json
node ".build/scripts/$name.js"
