#!/usr/bin/env bash
# Fails when the committed dist/ is not what the source builds to: the runner executes dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build >/dev/null
if [ -n "$(git status --porcelain --untracked-files=all -- dist)" ]; then
  echo "dist/ is stale: run 'npm run build' and commit dist/ with the source change." >&2
  git status --short --untracked-files=all -- dist >&2
  exit 1
fi
echo "dist/ matches the source."
