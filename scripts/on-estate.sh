#!/usr/bin/env bash
# npm run demo | bench | chaos: on a fresh Debian machine as root, set up like the test command
# (npm packages; Debian packages and services through estate.sh), then run scripts/NAME.ts on
# the estate. Arguments after NAME: --staging N and --production N go to `estate.sh up` (bench:
# --staging 8), every other one to the script (npm run bench -- --only=build).
#   bash scripts/on-estate.sh NAME [arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: on-estate.sh demo|bench|chaos [estate.sh up arguments]}
shift
estate_args=() script_args=()
while (($#)); do
  case $1 in
    --staging | --production) estate_args+=("$1" "${2:?$1 needs a number}") && shift 2 ;;
    *) script_args+=("$1") && shift ;;
  esac
done
npm ci --no-audit --no-fund --loglevel=error
# The simulation runs on the in-memory estate alone.
[[ " ${script_args[*]} " == *' --simulate '* ]] || bash test/estate/estate.sh up "${estate_args[@]}"
npx tsc -p tsconfig.tools.json
node ".build/scripts/$name.js" "${script_args[@]}"
