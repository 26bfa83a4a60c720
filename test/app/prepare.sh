#!/usr/bin/env bash
# Puts a static busybox into this build context. The image is built FROM scratch (the test
# machines cannot pull base images), and a 2 MB binary does not belong in git.
set -euo pipefail
src=${BUSYBOX:-/usr/bin/busybox}
dest=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/busybox
# Debian's `busybox` package is dynamically linked and would not run in a scratch image.
if [[ $(file -bL "$src") != *'statically linked'* ]]; then
  echo "prepare.sh: $src is not statically linked: install busybox-static" >&2
  exit 1
fi
# Only replace it when it differs, so the COPY layer stays cached between builds.
cmp -s "$src" "$dest" || install -m 0755 "$src" "$dest"
