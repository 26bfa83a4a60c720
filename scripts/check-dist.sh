#!/usr/bin/env bash
# Fails when the committed dist/ (what the runner executes), deploy.schema.json (what editors
# check the config with) or the configuration reference in docs/configuration.md is not what the
# source builds to.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build >/dev/null
if [ -n "$(git status --porcelain --untracked-files=all -- dist deploy.schema.json docs/configuration.md)" ]; then
  echo "dist/, deploy.schema.json or docs/configuration.md (its reference) is stale: run 'npm run build' and commit them with the source change." >&2
  git status --short --untracked-files=all -- dist deploy.schema.json docs/configuration.md >&2
  exit 1
fi
echo "dist/, deploy.schema.json and docs/configuration.md match the source."
