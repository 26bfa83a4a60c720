#!/usr/bin/env bash
# Fails when the committed dist/ (what the runner executes) or deploy.schema.json (what editors
# check the config with) is not what the source builds to.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build >/dev/null
if [ -n "$(git status --porcelain --untracked-files=all -- dist deploy.schema.json)" ]; then
  echo "dist/ or deploy.schema.json is stale: run 'npm run build' and commit them with the source change." >&2
  git status --short --untracked-files=all -- dist deploy.schema.json >&2
  exit 1
fi
echo "dist/ and deploy.schema.json match the source."
