#!/usr/bin/env bash
# Cuts a release of the action itself (CONTRIBUTING.md, "Releasing the action"):
#
#   scripts/release.sh vX.Y.Z [--push]
#
# Checks first, in this order, and stops at the first that fails:
#   1. vX.Y.Z is a release tag (semver, no build metadata) that does not exist yet;
#   2. HEAD is the branch main, and the work tree is clean;
#   3. CHANGELOG.md has a "## vX.Y.Z" section, and package.json's version is X.Y.Z;
#   4. dist/, deploy.schema.json and the configuration reference match the source (check-dist.sh);
#   5. the test command passes (npm test: the whole suite on the estate).
# Then it tags HEAD vX.Y.Z (annotated) and, for a stable release, moves the major tag vX there
# (users' `@v1`); a prerelease (v2.0.0-rc.1) moves nothing. With --push both go to origin, the
# major tag forced, since it moves by design.
# RELEASE_DIST_CHECK and RELEASE_TEST_COMMAND replace checks 4 and 5 for this script's own test.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'release: %s\n' "$*" >&2; exit 1; }

tag=${1:-}
push=0
[[ ${2:-} == --push ]] && push=1
[[ $# -le 2 && ( ${2:-} == '' || $push == 1 ) ]] || die "usage: scripts/release.sh vX.Y.Z [--push]"

[[ $tag =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]] ||
  die "$tag is not a release tag like v1.2.0 or v2.0.0-rc.1"
major=v${BASH_REMATCH[1]}
prerelease=${BASH_REMATCH[4]}
version=${tag#v}
if git rev-parse -q --verify "refs/tags/$tag" >/dev/null; then die "$tag exists already: a release tag never moves"; fi

[[ $(git rev-parse --abbrev-ref HEAD) == main ]] || die "HEAD is not main: release from main's tip"
[[ -z $(git status --porcelain --untracked-files=all) ]] || die "the work tree is not clean: commit or remove first"

grep -q "^## $tag\$" CHANGELOG.md || die "CHANGELOG.md has no '## $tag' section: write what changed for users"
[[ $(node -p 'require("./package.json").version') == "$version" ]] || die "package.json's version is not $version"

echo "release: checking that dist/, deploy.schema.json and docs/configuration.md match the source"
${RELEASE_DIST_CHECK:-bash scripts/check-dist.sh} || die "dist/ or a generated file is stale: npm run build, commit, and run again"
echo "release: running the test command"
${RELEASE_TEST_COMMAND:-npm test} || die "the test command failed: nothing was tagged"

git tag -a "$tag" -m "deploy-action $tag"
echo "release: tagged $tag at $(git rev-parse --short HEAD)"
if [[ -z $prerelease ]]; then
  git tag -f -a "$major" -m "deploy-action $major: $tag" "$tag^{commit}" >/dev/null
  echo "release: moved $major to $tag"
fi
if ((push)); then
  git push origin "refs/tags/$tag"
  if [[ -z $prerelease ]]; then git push --force origin "refs/tags/$major"; fi
else
  publish="git push origin $tag"
  [[ -n $prerelease ]] || publish+=" && git push --force origin $major"
  echo "release: not pushed; publish with: $publish"
fi
