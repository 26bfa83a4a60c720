#!/usr/bin/env bash
# Makes this machine "not empty", as a developer's workstation or a hosted runner is, to check
# that the estate and the test suite leave other people's things alone:
#
#   foreign.sh up     a dockerd (with its containerd) in the root namespace, a registry and an
#                     HAProxy of the machine's own, and a pre-existing `deploy` user
#   foreign.sh down   stops and removes them (the user only if this script created it)
#
# Run `npm test` between the two. Everything listens on loopback only.
set -euo pipefail
readonly DIR=/var/lib/deploy-action-foreign
log() { printf '[foreign] %s\n' "$*" >&2; }

up() {
  install -d "$DIR"
  if ! id deploy &>/dev/null; then
    useradd --create-home --shell /bin/bash deploy
    touch "$DIR/created-user"
  fi
  if [[ ! -f $DIR/dockerd.pid ]] || ! kill -0 "$(cat "$DIR/dockerd.pid")" 2>/dev/null; then
    # The machine's own engine, as Docker's packages run it: default socket, docker0, iptables.
    setsid dockerd --data-root "$DIR/docker" --exec-root "$DIR/exec" --pidfile "$DIR/dockerd.pid" \
      --host unix:///var/run/docker.sock </dev/null >>"$DIR/dockerd.log" 2>&1 &
  fi
  cat >"$DIR/registry.yml" <<YAML
version: 0.1
storage: { filesystem: { rootdirectory: $DIR/registry } }
http: { addr: 127.0.0.1:5999 }
YAML
  pgrep -f "docker-registry serve $DIR/registry.yml" >/dev/null ||
    setsid docker-registry serve "$DIR/registry.yml" </dev/null >>"$DIR/registry.log" 2>&1 &
  cat >"$DIR/haproxy.cfg" <<CFG
global
  stats socket $DIR/haproxy.sock mode 600 level admin
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend web
  bind 127.0.0.1:8999
  default_backend app
backend app
  server s1 127.0.0.1:5999 check
CFG
  pgrep -f "haproxy -D -f $DIR/haproxy.cfg" >/dev/null || haproxy -D -f "$DIR/haproxy.cfg" -p "$DIR/haproxy.pid"
  for _ in $(seq 50); do
    curl -sf --max-time 1 --unix-socket /var/run/docker.sock http://docker/_ping >/dev/null && break
    sleep 0.2
  done
  curl -sf --max-time 1 --unix-socket /var/run/docker.sock http://docker/_ping >/dev/null || { log "dockerd did not start"; exit 1; }
  log "up: dockerd $(cat "$DIR/dockerd.pid"), registry, haproxy $(cat "$DIR/haproxy.pid"), user deploy ($( [[ -f $DIR/created-user ]] && echo created || echo existed))"
}

down() {
  for f in dockerd haproxy; do
    [[ -f $DIR/$f.pid ]] && kill "$(cat "$DIR/$f.pid")" 2>/dev/null || true
  done
  pkill -f "docker-registry serve $DIR/registry.yml" || true
  for _ in $(seq 50); do pgrep -f "$DIR" >/dev/null || break; sleep 0.2; done
  if [[ -f $DIR/created-user ]]; then userdel --remove deploy 2>/dev/null || true; fi
  rm -rf "$DIR"
  log down
}

case ${1:-} in
  up | down) "$1" ;;
  *) sed -n '2,9s/^# \{0,1\}//p' "$0" >&2 && exit 2 ;;
esac
