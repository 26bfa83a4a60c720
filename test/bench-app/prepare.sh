#!/usr/bin/env bash
# Lays out the bench app's two build contexts in OUT (scripts/bench-build.ts builds them):
#   OUT/base  a Node image's root file system FROM scratch: this machine's Node 24 (stripped), the
#             libraries it links, npm, and a static busybox for a shell
#   OUT/app   this directory, with a package-lock.json and an npm cache for an offline npm ci
# The lock and the cache are made here, not committed: npm needs the registry's tarball URLs in
# the lock to install offline. Needs the project's npm ci (node 24 in node_modules/.bin).
#   bash test/bench-app/prepare.sh OUT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:?usage: prepare.sh OUT}
node=$(readlink -f "$repo/node_modules/.bin/node")
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
mkdir -p "$out"
out=$(cd "$out" && pwd)

rm -rf "$out/base" && mkdir -p "$out/base/rootfs"/{bin,tmp,root,usr/local/bin,usr/lib/node_modules,etc}
root=$out/base/rootfs
chmod 1777 "$root/tmp"
strip -o "$root/usr/local/bin/node" "$node"
# Every library the binary links, where the dynamic loader looks for it.
for lib in $(ldd "$node" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp -a "$npm_dir" "$root/usr/lib/node_modules/npm"
install -m 0755 "${BUSYBOX:-/usr/bin/busybox}" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
cat >"$out/base/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/bin HOME=/root
CMD ["node"]
DOCKERFILE

rm -rf "$out/app" && mkdir -p "$out/app"
cp -r "$here/Dockerfile" "$here/package.json" "$here/src" "$out/app/"
work=$(mktemp -d)
cp "$here/package.json" "$work/"
(
  cd "$work"
  PATH=$repo/node_modules/.bin:$PATH npm install --cache "$out/app/npm-cache" --prefer-offline --ignore-scripts \
    --omit-lockfile-registry-resolved=false --no-audit --no-fund --loglevel=error >/dev/null
)
cp "$work/package-lock.json" "$out/app/"
rm -rf "$work" "$out/app/npm-cache/_logs"
