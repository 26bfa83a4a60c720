#!/usr/bin/env bash
# A Docker engine with nothing in it, as a fresh CI runner has: no images, no build cache. For the
# build cache's test and bench, which must show what a cache import brings to an empty engine.
#   scratch-engine.sh start DIR   prints the engine's DOCKER_HOST once it answers
#   scratch-engine.sh stop DIR    stops it and removes DIR
# Root only. Its own mount namespace (a private /run: its own containerd, and no other engine's
# socket adopted); no iptables rules. Build steps run on the estate's build bridge, in the upper
# sixteen addresses of its /27 (the runner engine's allocate from the bottom of the same range):
# every address stays a test address.
set -euo pipefail
readonly REGISTRY_ADDR=10.231.0.2:5000 BUILD_BRIDGE=dae-build0 FIXED_CIDR=10.231.0.240/28
cmd=${1:?usage: scratch-engine.sh start|stop DIR}
dir=${2:?usage: scratch-engine.sh start|stop DIR}
case $cmd in
  start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    printf '{ "deprecated-key-path": "%s/key.json" }\n' "$dir" >"$dir/daemon.json"
    # setsid: the engine outlives this script and is stopped by `stop` only.
    setsid unshare --mount --propagation private sh -c "
      mount -t tmpfs -o mode=0755 tmpfs /run &&
      exec dockerd --host unix://$dir/docker.sock --data-root $dir/data --exec-root $dir/exec \
        --pidfile $dir/docker.pid --config-file $dir/daemon.json --insecure-registry $REGISTRY_ADDR \
        --cgroup-parent /deploy-action-scratch-${dir//\//-} --iptables=false --ip-masq=false --ip-forward=false \
        --bridge=$BUILD_BRIDGE --fixed-cidr=$FIXED_CIDR" >"$dir/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 300); do
      if [[ -S $dir/docker.sock ]] && DOCKER_HOST=unix://$dir/docker.sock docker version >/dev/null 2>&1; then
        echo "unix://$dir/docker.sock"
        exit 0
      fi
      sleep 0.1
    done
    echo "scratch-engine: dockerd did not answer in 30 s; its log:" >&2
    tail -20 "$dir/dockerd.log" >&2
    exit 1
    ;;
  stop)
    if [[ -f $dir/docker.pid ]]; then
      pid=$(cat "$dir/docker.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: scratch-engine.sh start|stop DIR" >&2; exit 2 ;;
esac
