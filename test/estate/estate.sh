#!/usr/bin/env bash
# The test estate: real hosts, a registry and load balancers on one machine, for the
# integration tests of deploy-action.
#
#   estate.sh up [--staging N] [--production N]   start (or repair) the estate, N in 1..8
#   estate.sh down [--keep]                       stop everything, delete it (--keep: keep $ESTATE_DIR)
#   estate.sh status                              what is running; exit 1 when something is down
#   estate.sh exec NODE CMD...                    run CMD inside NODE (stg1, prd2, lb-staging, reg, ...)
#   estate.sh reload staging|production|LB_NODE   reload those HAProxies, keeping their runtime state
#   estate.sh bare up|down                        a clean host (bare1) and load balancer (lb-bare), rebuilt
#                                                 from scratch: the newcomer's path of docs/getting-started.md
#
# Every node is one long-running supervisor process (this script, `_node NAME`) living in the
# node's own network namespace (bridged to the root namespace on 10.231.0.0/24) and its own
# mount namespace. A private /run gives each host its own /var/run/docker.sock and each load
# balancer its own /run/haproxy/admin.sock; mounts made in there vanish with the node, so a
# killed run leaves no mounts behind. Every process we start, and every container the engines
# start, lives in a cgroup under /deploy-action-estate: teardown kills exactly those processes,
# whatever state a killed run left them in.
set -euo pipefail

readonly RUN_DIR=/run/deploy-action-estate
readonly NET=10.231.0
readonly BRIDGE=dae0
# The runner engine's bridge for RUN steps: BuildKit refuses to run them with --bridge=none,
# and its addresses must stay inside the test subnet (nodes use .1 to .28).
readonly BUILD_BRIDGE=dae-build0 BUILD_BRIDGE_ADDR=$NET.225/27
readonly REGISTRY_ADDR=$NET.2:5000
readonly REGISTRY_USER=ci
readonly DOCKER_CLI=/usr/bin/docker
readonly RUNNER_SOCK=$RUN_DIR/runner/docker.sock
readonly HAPROXY_SOCK=/run/haproxy/admin.sock
readonly CG_NAME=deploy-action-estate
readonly DEPLOY_USER=deploy
readonly MAX_HOSTS=8
readonly NODE_RE="^(runner|reg|lb-staging|lb-production|lb-production2|stg[1-$MAX_HOSTS]|prd[1-$MAX_HOSTS]|bare1|lb-bare)\$"
readonly READY_TIMEOUT=60
SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
readonly SCRIPT
REPO_ROOT=$(cd "$(dirname "$SCRIPT")/../.." && pwd)
readonly REPO_ROOT
export ESTATE_DIR=${ESTATE_DIR:-/var/lib/deploy-action-estate}

# Debian (and Ubuntu) packages providing every binary used here (tests run on fresh machines).
# The Docker engine is docker.io only where no engine is installed: Docker's own docker-ce and
# containerd.io (GitHub's hosted runners) conflict with it, and serve the estate just as well.
readonly PACKAGES=(docker-registry openssh-server openssh-client haproxy busybox-static
  iproute2 iptables curl apache2-utils jq socat file util-linux)
readonly ENGINE_PACKAGE=docker.io
readonly ENGINE_BINARIES=(dockerd containerd runc docker-init)

log() { printf '[estate] %s\n' "$*" >&2; }
die() { printf '[estate] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- nodes

node_kind() {
  case $1 in
    runner) echo runner ;;
    reg) echo reg ;;
    lb-staging | lb-production | lb-production2) echo lb ;;
    stg[1-$MAX_HOSTS] | prd[1-$MAX_HOSTS]) echo host ;;
    bare1) echo bare-host ;;
    lb-bare) echo bare-lb ;;
    *) die "unknown node '$1'" ;;
  esac
}

node_addr() {
  case $1 in
    runner) echo "$NET.1" ;;
    reg) echo "$NET.2" ;;
    lb-staging) echo "$NET.10" ;;
    lb-production) echo "$NET.20" ;;
    lb-production2) echo "$NET.30" ;;
    lb-bare) echo "$NET.40" ;;
    bare1) echo "$NET.41" ;;
    stg*) echo "$NET.$((10 + ${1#stg}))" ;;
    prd*) echo "$NET.$((20 + ${1#prd}))" ;;
  esac
}

node_dir() {
  case $(node_kind "$1") in
    runner) echo "$ESTATE_DIR/runner" ;;
    reg) echo "$ESTATE_DIR/registry" ;;
    lb) echo "$ESTATE_DIR/$1" ;;
    host) echo "$ESTATE_DIR/hosts/dae-$1" ;;
    bare-host | bare-lb) echo "$ESTATE_DIR/bare/$1" ;;
  esac
}

veth_of() { local addr; addr=$(node_addr "$1"); echo "daev${addr##*.}"; }

# A rebuilt node keeps its MAC: other nodes' ARP caches would otherwise point at the old one
# for about 40 seconds. Bridges too, or they take the lowest MAC of whatever ports they have.
mac_of() { local addr=$1; printf '02:da:e0:00:00:%02x' "${addr##*.}"; }

env_prefix() { case $1 in staging) echo stg ;; production) echo prd ;; *) die "unknown environment '$1'" ;; esac; }

# The load balancers of an environment: production has two peers, as real estates do (an
# active/passive pair, or one per region), so the action must drive both.
env_lbs() { case $1 in staging) echo lb-staging ;; production) echo lb-production lb-production2 ;; esac; }
lb_env() { case $1 in lb-staging) echo staging ;; lb-production | lb-production2) echo production ;; esac; }

# Nodes that exist in some form (pidfile, namespace or cgroup), whether alive or not.
known_nodes() {
  {
    if [[ -d $RUN_DIR ]]; then
      find "$RUN_DIR" -maxdepth 1 -name '*.pid' -printf '%f\n' | sed 's/\.pid$//'
    fi
    ip netns list | awk '$1 ~ /^dae-/ { print substr($1, 5) }'
    if [[ -d $(cg_base)/$CG_NAME ]]; then
      find "$(cg_base)/$CG_NAME" -mindepth 1 -maxdepth 1 -type d -printf '%f\n'
    fi
  } | awk -v re="$NODE_RE" '$0 ~ re' | sort -u
}

# The supervisor's pid, only if it is alive AND still in its cgroup: a recycled pid is not ours.
node_pid() {
  local pid
  pid=$(cat "$RUN_DIR/$1.pid" 2>/dev/null) || return 1
  grep -qs ":/$CG_NAME/$1\$" "/proc/$pid/cgroup" || return 1
  echo "$pid"
}

in_node() {
  local pid
  pid=$(node_pid "$1") || die "node $1 is not running"
  shift
  nsenter --target "$pid" --net --mount -- "$@"
}

tcp_open() { timeout 1 bash -c ">/dev/tcp/$1/$2" 2>/dev/null; }

node_ready() {
  local name=$1 addr pid
  addr=$(node_addr "$name")
  pid=$(node_pid "$name") || return 1
  case $(node_kind "$name") in
    runner) curl -sf --max-time 2 --unix-socket "$RUNNER_SOCK" http://docker/_ping >/dev/null ;;
    reg) [[ $(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://$REGISTRY_ADDR/v2/") == 401 ]] ;;
    host)
      nsenter --target "$pid" --net --mount -- \
        curl -sf --max-time 2 --unix-socket /run/docker.sock http://docker/_ping >/dev/null &&
        tcp_open "$addr" 22
      ;;
    lb)
      nsenter --target "$pid" --net --mount -- test -S "$HAPROXY_SOCK" &&
        tcp_open "$addr" 80 && tcp_open "$addr" 22
      ;;
    bare-host)
      nsenter --target "$pid" --net --mount -- \
        curl -sf --max-time 2 --unix-socket /run/docker.sock http://docker/_ping >/dev/null &&
        tcp_open "$addr" 22
      ;;
    # The package's configuration has no frontend: nothing listens on :80 yet.
    bare-lb) nsenter --target "$pid" --net --mount -- test -S "$HAPROXY_SOCK" && tcp_open "$addr" 22 ;;
  esac
}

# ---------------------------------------------------------------- cgroups

cg_base() {
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    echo /sys/fs/cgroup
  else
    echo /sys/fs/cgroup/pids
  fi
}

cg_procs() { find "$@" -name cgroup.procs -exec cat {} + 2>/dev/null || true; }

# SIGKILL until empty: the processes may still be forking (a dockerd restarting containerd).
cg_kill() {
  local dirs=() d pids i
  for d in "$@"; do [[ -d $d ]] && dirs+=("$d"); done
  ((${#dirs[@]})) || return 0
  for ((i = 0; i < 100; i++)); do
    pids=$(cg_procs "${dirs[@]}")
    [[ -z $pids ]] && return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  die "processes survive in ${dirs[*]}: $(cg_procs "${dirs[@]}" | tr '\n' ' ')"
}

# Docker creates container cgroups in every v1 hierarchy, not only in the one we track.
cg_remove() {
  local rel d
  for rel in "$@"; do
    for d in "/sys/fs/cgroup/$rel" /sys/fs/cgroup/*/"$rel"; do
      [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
  done
  return 0
}

# ---------------------------------------------------------------- network

ensure_bridge() { # NAME ADDR/PREFIX
  if ! ip link show dev "$1" &>/dev/null; then
    ip link add "$1" address "$(mac_of "${2%/*}")" type bridge
    # No IPv6 autoconfiguration: nothing but the test subnet may carry traffic.
    sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1"
  fi
  ip addr replace "$2" dev "$1"
  ip link set "$1" up
}

ensure_network() {
  ensure_bridge "$BRIDGE" "$NET.1/24"
  ensure_bridge "$BUILD_BRIDGE" "$BUILD_BRIDGE_ADDR"
  # A dockerd in the root namespace sets FORWARD to DROP, and with br_netfilter that also
  # filters bridged traffic between the namespaces.
  iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null ||
    iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
}

create_netns() {
  local name=$1 ns=dae-$1 veth addr
  veth=$(veth_of "$name")
  addr=$(node_addr "$name")
  ip netns add "$ns"
  nsenter --net="/run/netns/$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip link add "$veth" type veth peer name eth0 address "$(mac_of "$addr")" netns "$ns"
  sysctl -qw "net.ipv6.conf.$veth.disable_ipv6=1"
  ip link set "$veth" master "$BRIDGE" up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

# ---------------------------------------------------------------- node lifecycle

launch_node() {
  local name=$1 dir cg enter i
  dir=$(node_dir "$name")
  cg=$(cg_base)/$CG_NAME/$name
  mkdir -p "$cg" "$RUN_DIR"
  if [[ $name == runner ]]; then
    enter=(unshare --mount --propagation private)
    mkdir -p "$RUN_DIR/runner" "$dir/run"
  else
    enter=(nsenter --net="/run/netns/dae-$name" unshare --mount --propagation private)
  fi
  # Neither nsenter (no --pid) nor unshare (no --fork) nor setsid (not a group leader here)
  # forks, so $! is the supervisor itself.
  (
    # Every descriptor beyond stdio goes, not only our own lock's: a caller's (the
    # `flock /tmp/estate.lock estate.sh up` of COORD.md) would otherwise be held by the
    # daemons for as long as the estate runs, and nobody could take that lock again.
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
    done
    echo "$BASHPID" >"$cg/cgroup.procs"
    exec setsid "${enter[@]}" bash "$SCRIPT" _node "$name"
  ) </dev/null >>"$dir/node.log" 2>&1 &
  echo "$!" >"$RUN_DIR/$name.pid"
  # node_pid trusts a pid only once it is in the node's cgroup, which takes the child a moment.
  for ((i = 0; i < 100; i++)); do
    node_pid "$name" >/dev/null && return 0
    sleep 0.02
  done
  fail_node "$name" "did not start"
}

teardown_node() {
  local name=$1 veth
  cg_kill "$(cg_base)/$CG_NAME/$name" "$(cg_base)/$CG_NAME/ctr-$name"
  cg_remove "$CG_NAME/$name" "$CG_NAME/ctr-$name"
  rm -f "$RUN_DIR/$name.pid"
  if [[ $name == runner ]]; then
    # Its exec-root is on the real /run: a stale containerd pidfile would be trusted.
    rm -rf "$RUN_DIR/runner"
  else
    ip netns del "dae-$name" 2>/dev/null || true
    # The veth also vanishes by itself once its namespace is gone: that race is fine to lose.
    veth=$(veth_of "$name")
    ip link del "$veth" 2>/dev/null || true
  fi
}

fail_node() {
  local name=$1 f
  log "$name: $2; last log lines:"
  for f in "$(node_dir "$name")"/*.log; do
    [[ -s $f ]] || continue
    printf -- '--- %s\n' "$f" >&2
    tail -n 15 "$f" >&2
  done
  die "$name did not come up (the estate is left as is: inspect it, then run 'estate.sh down')"
}

wait_ready() {
  local name deadline=$((SECONDS + READY_TIMEOUT))
  for name in "$@"; do
    until node_ready "$name"; do
      node_pid "$name" >/dev/null || fail_node "$name" "exited"
      ((SECONDS < deadline)) || fail_node "$name" "not ready after ${READY_TIMEOUT}s"
      sleep 0.2
    done
  done
}

# Runs inside the node's namespaces (see launch_node); stays until one of its daemons exits.
node_main() {
  local name=$1 kind dir pids=()
  kind=$(node_kind "$name")
  dir=$(node_dir "$name")
  export PATH=/usr/sbin:/usr/bin:/sbin:/bin
  # The daemons keep the directory `up` ran in as theirs: HAProxy's master re-executes itself from
  # it on every reload, and fails once that directory is gone (a removed git worktree).
  cd /
  # This mount namespace copied the handles of the other nodes' network namespaces; they
  # would keep those namespaces alive after `ip netns del`.
  if mountpoint -q /run/netns; then umount --recursive --lazy /run/netns; fi
  # A private /run keeps each node's sockets and pidfiles apart, and the paths engines hard-wire
  # (/run/docker/plugins, /run/containerd/s, /run/runc) off the machine. It also hides a system
  # containerd's socket, which dockerd would otherwise adopt.
  case $kind in
    runner)
      # The runner's socket directory must stay reachable from the root mount namespace.
      mount --bind "$RUN_DIR/runner" "$dir/run"
      mount -t tmpfs -o mode=0755 tmpfs /run
      mkdir -p "$RUN_DIR/runner"
      mount --move "$dir/run" "$RUN_DIR/runner"
      ;;
    bare-host | bare-lb)
      # A machine of its own as far as setup goes: its own /etc (users, groups, sshd and HAProxy
      # configuration, host keys; see bare_prepare), /home and HAProxy state directory.
      mount -t tmpfs -o mode=0755 tmpfs /run
      mount --bind "$dir/root/etc" /etc
      mount -t tmpfs -o mode=0755 tmpfs /home
      mount --bind "$dir/lib-haproxy" /var/lib/haproxy
      mkdir -m 0755 /run/sshd
      ;;
    host | lb)
      mount -t tmpfs -o mode=0755 tmpfs /run
      # The login's home too: a `docker login` on one host must not log in the others.
      mount --bind "$dir/home" "$(getent passwd "$DEPLOY_USER" | cut -d: -f6)"
      mkdir -m 0755 /run/sshd
      ;;
  esac
  case $kind in
    runner)
      dockerd --host "unix://$RUNNER_SOCK" --data-root "$dir/docker" \
        --exec-root "$RUN_DIR/runner/exec" --pidfile "$RUN_DIR/runner/docker.pid" \
        --config-file "$dir/daemon.json" \
        --insecure-registry "$REGISTRY_ADDR" --cgroup-parent "/$CG_NAME/ctr-runner" \
        --iptables=false --ip-masq=false --ip-forward=false --bridge="$BUILD_BRIDGE" \
        >>"$dir/dockerd.log" 2>&1 &
      pids+=("$!")
      ;;
    reg)
      docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 &
      pids+=("$!")
      ;;
    host | bare-host)
      # A short shutdown timeout: teardown must not wait on containers that ignore SIGTERM.
      # Containers' own bridge inside the test range too (10.231.1XX.0/24 for host .XX): every
      # address the estate uses is one of its test hosts'.
      local octet
      octet=$(node_addr "$name")
      octet=${octet##*.}
      dockerd --host unix:///run/docker.sock --group docker --data-root "$dir/docker" \
        --bip "${NET%.*}.1${octet}.1/24" \
        --exec-root /run/docker --pidfile /run/docker.pid --shutdown-timeout 2 \
        --config-file "$dir/daemon.json" \
        --insecure-registry "$REGISTRY_ADDR" --cgroup-parent "/$CG_NAME/ctr-$name" \
        >>"$dir/dockerd.log" 2>&1 &
      pids+=("$!")
      ;;
    lb)
      install -d -m 0750 -g haproxy /run/haproxy
      haproxy -W -db -f "$dir/haproxy.cfg" -p /run/haproxy/haproxy.pid >>"$dir/haproxy.log" 2>&1 &
      pids+=("$!")
      ;;
    bare-lb)
      # As Debian's unit runs it (haproxy -Ws -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid,
      # RuntimeDirectory=haproxy), from the package's own configuration; a reload is USR2.
      install -d -m 0755 /run/haproxy
      haproxy -W -db -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid >>"$dir/haproxy.log" 2>&1 &
      pids+=("$!")
      ;;
  esac
  if [[ $kind == host || $kind == lb ]]; then
    /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" &
    pids+=("$!")
  elif [[ $kind == bare-host || $kind == bare-lb ]]; then
    # The package's sshd_config, as a fresh install has it.
    /usr/sbin/sshd -D -E "$dir/sshd.log" &
    pids+=("$!")
  fi
  trap 'kill -TERM "${pids[@]}" 2>/dev/null || true' TERM INT
  wait -n "${pids[@]}" || true
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait || true
}

# ---------------------------------------------------------------- configuration

# Whether a Docker engine is installed, from whichever packages: every binary the estate runs
# (a docker client elsewhere on PATH, without an engine, does not count).
engine_installed() {
  local b
  for b in "${ENGINE_BINARIES[@]}"; do command -v "$b" >/dev/null || return 1; done
  [[ -x $DOCKER_CLI ]]
}

ensure_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
  done
  if ! engine_installed; then
    missing+=("$ENGINE_PACKAGE")
  fi
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_user() {
  if ! id "$DEPLOY_USER" &>/dev/null; then
    useradd --create-home --shell /bin/bash "$DEPLOY_USER"
    touch "$ESTATE_DIR/created-deploy-user"
  fi
  usermod -aG docker,haproxy "$DEPLOY_USER"
  # useradd leaves the account locked ('!'), and sshd without PAM refuses even key logins.
  if [[ $(getent shadow "$DEPLOY_USER" | cut -d: -f2) == '!'* ]]; then
    usermod -p '*' "$DEPLOY_USER"
  fi
}

# The machine's /etc/docker/daemon.json (a CI runner has one) would clash with our flags, and
# without a key path every engine shares /etc/docker/key.json, hence one engine ID.
ensure_engine_config() {
  local dir
  dir=$(node_dir "$1")
  install -d -m 0755 "$dir"
  printf '{ "deprecated-key-path": "%s/key.json" }\n' "$dir" >"$dir/daemon.json"
}

# A run killed inside ssh-keygen can leave a private key without its public half.
ensure_key() { # PATH COMMENT
  [[ -s $1 && -s $1.pub ]] && return 0
  rm -f "$1" "$1.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1"
}

write_if_changed() { # FILE: content on stdin; returns 1 when unchanged
  local new
  new=$(cat)
  if [[ -f $1 && $(cat "$1") == "$new" ]]; then return 1; fi
  printf '%s\n' "$new" >"$1"
}

ensure_registry_config() {
  local dir=$ESTATE_DIR/registry
  install -d -m 0700 "$dir" "$dir/storage"
  if [[ ! -s $dir/password ]]; then
    (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$dir/password")
  fi
  if [[ ! -s $dir/htpasswd || $dir/password -nt $dir/htpasswd ]]; then
    htpasswd -iBc "$dir/htpasswd" "$REGISTRY_USER" <"$dir/password" 2>/dev/null
  fi
  write_if_changed "$dir/config.yml" <<EOF || true
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: $REGISTRY_ADDR
  secret: deploy-action-estate
auth:
  htpasswd:
    realm: deploy-action-estate
    path: $dir/htpasswd
EOF
}

ensure_sshd_config() {
  local name=$1 dir
  dir=$(node_dir "$name")
  install -d -m 0755 "$dir"
  ensure_key "$dir/ssh_host_ed25519_key" "$name"
  # The deploy key is authorised in each node's own home (bind-mounted at ~deploy there), not
  # in one shared file: StrictModes would reject that file below a world-writable /tmp.
  install -d -m 0700 -o "$DEPLOY_USER" -g "$DEPLOY_USER" "$dir/home" "$dir/home/.ssh"
  install -m 0600 -o "$DEPLOY_USER" -g "$DEPLOY_USER" "$ESTATE_DIR/ssh/deploy_key.pub" \
    "$dir/home/.ssh/authorized_keys"
  write_if_changed "$dir/sshd_config" <<EOF || true
ListenAddress $(node_addr "$name"):22
HostKey $dir/ssh_host_ed25519_key
PidFile /run/sshd.pid
UsePAM no
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers $DEPLOY_USER
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
X11Forwarding no
PrintMotd no
Subsystem sftp internal-sftp
# Parallel tests open many connections at once; the default 10:30:100 drops some.
MaxStartups 100
EOF
}

ensure_haproxy_config() { # LB_NODE COUNT; returns 1 when unchanged
  local node=$1 count=$2 env dir i addr prefix
  env=$(lb_env "$node")
  dir=$(node_dir "$node")
  prefix=$(env_prefix "$env")
  install -d -m 0755 "$dir"
  {
    cat <<EOF
global
    # The deploy user reaches the Runtime API through group haproxy, over SSH.
    stats socket $HAPROXY_SOCK mode 660 group haproxy level admin expose-fd listeners
    stats timeout 2m
    # Written by 'estate.sh reload' just before reloading, read by the new process.
    server-state-file $dir/server-state
    hard-stop-after 30s
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-request 5s
    timeout http-keep-alive 5s
    timeout queue 10s
    timeout check 2s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
    load-server-state-from-file global

frontend web
    bind $(node_addr "$node"):80
    default_backend app

backend app
    balance roundrobin
    option httpchk GET /healthcheck
    http-check expect status 200
    option allbackups
    default-server inter 1s fall 2 rise 2 init-addr last,libc,none
EOF
    for ((i = 1; i <= count; i++)); do
      addr=$(node_addr "$prefix$i")
      printf '    server h%d-master %s:50000 check\n' "$i" "$addr"
      printf '    server h%d-backup %s:50001 check backup\n' "$i" "$addr"
      # Spare servers for rollout.procedure: no-gap (as command: haproxy-config prints them):
      # in MAINT until a no-gap deploy starts a container on the spare port.
      printf '    server h%d-master-spare %s:50002 check disabled\n' "$i" "$addr"
      printf '    server h%d-backup-spare %s:50003 check backup disabled\n' "$i" "$addr"
    done
  } | write_if_changed "$dir/haproxy.cfg"
}

hosts_json() { # PREFIX COUNT
  local i
  for ((i = 1; i <= $2; i++)); do node_addr "$1$i"; done | jq -R . | jq -sc .
}

hosts_yaml() { hosts_json "$@" | sed 's/"//g; s/,/, /g'; }

write_outputs() { # STAGING PRODUCTION
  local password
  password=$(cat "$ESTATE_DIR/registry/password")
  jq -n --arg registry "$REGISTRY_ADDR" --arg user "$REGISTRY_USER" --arg password "$password" \
    --arg runner "unix://$RUNNER_SOCK" --arg cli "$DOCKER_CLI" --arg sshUser "$DEPLOY_USER" \
    --arg key "$ESTATE_DIR/ssh/deploy_key" --arg known "$ESTATE_DIR/ssh/known_hosts" \
    --arg sock "$HAPROXY_SOCK" --arg stgLb "$(node_addr lb-staging)" --arg prdLb "$(node_addr lb-production)" \
    --arg prdLb2 "$(node_addr lb-production2)" \
    --argjson stgHosts "$(hosts_json stg "$1")" --argjson prdHosts "$(hosts_json prd "$2")" '
    def lb($address): { address: $address, frontend: "http://\($address):80", backend: "app", socket: $sock };
    def env($lbs; $hosts): { lb: lb($lbs[0]), lbs: [$lbs[] | lb(.)], hosts: $hosts };
    {
      registry: { address: $registry, username: $user, password: $password },
      runnerDockerHost: $runner,
      dockerCli: $cli,
      sshUser: $sshUser,
      sshKey: $key,
      knownHosts: $known,
      environments: { staging: env([$stgLb]; $stgHosts), production: env([$prdLb, $prdLb2]; $prdHosts) }
    }' >"$ESTATE_DIR/estate.json"

  cat >"$ESTATE_DIR/deploy.yml" <<EOF
app: demo
image: $REGISTRY_ADDR/clay/demo
build: { context: test/app, dockerfile: Dockerfile }
container: { port: 3000, stop-timeout: 10, init: true }
ports: { master: 50000, backup: 50001 }
health: { path: /healthcheck, timeout: 30, interval: 1 }
ssh: { user: $DEPLOY_USER, port: 22 }
haproxy: { host: $(node_addr lb-staging), socket: $HAPROXY_SOCK, backend: app, drain-timeout: 30 }
environments:
  staging: { hosts: $(hosts_yaml stg "$1") }
  production: { hosts: $(hosts_yaml prd "$2"), haproxy: { hosts: [$(node_addr lb-production), $(node_addr lb-production2)] } }
EOF

  (umask 077 && cat >"$ESTATE_DIR/inputs.env" <<EOF
INPUT_REGISTRY-USERNAME=$REGISTRY_USER
INPUT_REGISTRY-PASSWORD=$password
ESTATE_SSH_KEY=$ESTATE_DIR/ssh/deploy_key
ESTATE_KNOWN_HOSTS=$ESTATE_DIR/ssh/known_hosts
DOCKER_HOST=unix://$RUNNER_SOCK
EOF
  )
}

# ---------------------------------------------------------------- commands

# Serialises up/down/reload; `exec` and `status` stay usable while one runs. The daemons
# must not inherit the descriptor (see launch_node), or the lock would outlive `up`.
lock_fd=
take_lock() {
  exec {lock_fd}<"$SCRIPT"
  flock -w 600 "$lock_fd" || die "another estate.sh up/down/reload is still running"
}

check_estate_dir() {
  # Every node mounts its own /run, which would hide an ESTATE_DIR below it.
  [[ $ESTATE_DIR == /?* && $ESTATE_DIR != *[[:space:]]* && $ESTATE_DIR != /run/* && $ESTATE_DIR != /var/run/* ]] ||
    die "ESTATE_DIR must be an absolute path without spaces, outside /run (got '$ESTATE_DIR')"
  local recorded
  recorded=$(cat "$RUN_DIR/estate-dir" 2>/dev/null) || return 0
  [[ $recorded == "$ESTATE_DIR" ]] ||
    die "the running estate lives in $recorded: run 'ESTATE_DIR=$recorded estate.sh down' first"
}

lb_cli() { # LB_NODE COMMAND: one Runtime API command, its answer on stdout
  printf '%s\n' "$2" | in_node "$1" socat stdio "unix-connect:$HAPROXY_SOCK"
}

lb_reload() { # LB_NODE
  local name=$1 master old new i
  # HAProxy saves no runtime state itself: without this, a reload forgets drain and maint.
  lb_cli "$name" "show servers state" >"$(node_dir "$name")/server-state"
  old=$(lb_cli "$name" "show info" | awk '$1 == "Pid:" { print $2 }')
  master=$(in_node "$name" cat /run/haproxy/haproxy.pid)
  kill -USR2 "$master"
  for ((i = 0; i < 100; i++)); do
    new=$(lb_cli "$name" "show info" 2>/dev/null | awk '$1 == "Pid:" { print $2 }') || true
    [[ -n $new && $new != "$old" ]] && return 0
    sleep 0.1
  done
  fail_node "$name" "no new HAProxy worker 10s after the reload"
}

# Keys, configurations and known_hosts for NODES; repeating it changes nothing.
prepare_files() { # NODES...
  local name kind
  install -d -m 0755 "$ESTATE_DIR/ssh" "$ESTATE_DIR/hosts"
  ensure_key "$ESTATE_DIR/ssh/deploy_key" deploy-action-estate
  ensure_registry_config
  : >"$ESTATE_DIR/ssh/known_hosts.new"
  for name; do
    kind=$(node_kind "$name")
    [[ $kind == runner || $kind == host ]] && ensure_engine_config "$name"
    [[ $kind == host || $kind == lb ]] || continue
    ensure_sshd_config "$name"
    printf '%s %s\n' "$(node_addr "$name")" "$(cut -d' ' -f1,2 "$(node_dir "$name")/ssh_host_ed25519_key.pub")" \
      >>"$ESTATE_DIR/ssh/known_hosts.new"
  done
  mv "$ESTATE_DIR/ssh/known_hosts.new" "$ESTATE_DIR/ssh/known_hosts"
}

cmd_up() {
  local staging=2 production=2 nodes=() started=() reload=() name env i t0=$EPOCHREALTIME
  while (($#)); do
    case $1 in
      --staging) staging=${2:-} && shift 2 ;;
      --production) production=${2:-} && shift 2 ;;
      *) die "usage: estate.sh up [--staging N] [--production N]" ;;
    esac
  done
  [[ $staging =~ ^[1-$MAX_HOSTS]$ && $production =~ ^[1-$MAX_HOSTS]$ ]] ||
    die "host counts must be 1..$MAX_HOSTS (got '$staging' and '$production')"
  ((EUID == 0)) || die "must run as root"
  check_estate_dir
  take_lock
  ensure_packages

  nodes=(runner reg lb-staging lb-production lb-production2)
  for ((i = 1; i <= staging; i++)); do nodes+=("stg$i"); done
  for ((i = 1; i <= production; i++)); do nodes+=("prd$i"); done

  install -d -m 0755 "$ESTATE_DIR" "$RUN_DIR"
  touch "$ESTATE_DIR/.deploy-action-estate"
  echo "$ESTATE_DIR" >"$RUN_DIR/estate-dir"
  ensure_user
  bash "$REPO_ROOT/test/app/prepare.sh"
  prepare_files "${nodes[@]}"
  for name in $(env_lbs staging); do
    if ensure_haproxy_config "$name" "$staging"; then reload+=("$name"); fi
  done
  for name in $(env_lbs production); do
    if ensure_haproxy_config "$name" "$production"; then reload+=("$name"); fi
  done
  ensure_network
  mkdir -p "$(cg_base)/$CG_NAME"

  # Whatever is not wanted, or no longer healthy, is torn down; what is missing is built.
  for name in $(known_nodes); do
    [[ " ${nodes[*]} " == *" $name "* ]] && continue
    log "removing $name"
    teardown_node "$name"
  done
  for name in "${nodes[@]}"; do
    node_ready "$name" && continue
    if [[ -e $RUN_DIR/$name.pid || -e /run/netns/dae-$name ]]; then
      log "$name is not healthy: rebuilding it"
    fi
    teardown_node "$name"
    [[ $name == runner ]] || create_netns "$name"
    # A fresh HAProxy starts from its configuration, not from a previous run's drain states.
    [[ $(node_kind "$name") == lb ]] && rm -f "$(node_dir "$name")/server-state"
    launch_node "$name"
    started+=("$name")
  done
  wait_ready "${started[@]}"
  for name in "${reload[@]}"; do
    [[ " ${started[*]} " == *" $name "* ]] && continue
    log "$name: configuration changed, reloading"
    lb_reload "$name"
  done

  write_outputs "$staging" "$production"
  log "started: ${started[*]:-nothing (all running)}"
  log "estate: $ESTATE_DIR/estate.json, $ESTATE_DIR/deploy.yml, $ESTATE_DIR/inputs.env"
  awk -v t0="$t0" -v t1="$EPOCHREALTIME" 'BEGIN { printf "[estate] up took %.1fs\n", t1 - t0 }' >&2
}

unmount_under() {
  local dir
  for dir in "$@"; do
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
      sort -r | xargs -r -n1 umount --lazy
  done
}

cmd_down() {
  local keep=0 name pid pids=() i
  case ${1:-} in
    --keep) keep=1 ;;
    '') ;;
    *) die "usage: estate.sh down [--keep]" ;;
  esac
  ((EUID == 0)) || die "must run as root"
  if [[ -f $RUN_DIR/estate-dir ]]; then ESTATE_DIR=$(cat "$RUN_DIR/estate-dir"); fi
  check_estate_dir
  take_lock

  # Politely first, so engines stop their containers and keep a consistent data-root (--keep).
  for name in $(known_nodes); do
    if pid=$(node_pid "$name"); then pids+=("$pid"); fi
  done
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "${pids[@]}" 2>/dev/null || break
      sleep 0.1
    done
  fi
  cg_kill "$(cg_base)/$CG_NAME"
  for name in $(known_nodes); do teardown_node "$name"; done
  cg_remove "$CG_NAME"
  ip link del "$BRIDGE" 2>/dev/null || true
  ip link del "$BUILD_BRIDGE" 2>/dev/null || true
  while iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do
    iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  done

  # Only our private namespaces mount anything, but rm -rf must never cross a mount.
  unmount_under "$ESTATE_DIR" "$RUN_DIR"
  if [[ -f $ESTATE_DIR/created-deploy-user ]] && id "$DEPLOY_USER" &>/dev/null; then
    userdel --remove "$DEPLOY_USER" 2>/dev/null || log "could not delete user $DEPLOY_USER"
    rm -f "$ESTATE_DIR/created-deploy-user"
  fi
  rm -rf "$RUN_DIR"
  if ((keep)); then
    log "down; kept $ESTATE_DIR"
  elif [[ -f $ESTATE_DIR/.deploy-action-estate ]]; then
    rm -rf "$ESTATE_DIR"
    log "down"
  elif [[ -e $ESTATE_DIR ]]; then
    log "down; left $ESTATE_DIR alone: it has no .deploy-action-estate marker"
  fi
}

cmd_status() {
  local name pid state bad=0 any=0
  for name in $(known_nodes); do
    any=1
    if ! pid=$(node_pid "$name"); then
      state=dead
      bad=1
    elif node_ready "$name"; then
      state="up (pid $pid)"
    else
      state="running but not ready"
      bad=1
    fi
    printf '%-14s %-12s %s\n' "$name" "$(node_addr "$name")" "$state"
  done
  if ip link show dev "$BRIDGE" &>/dev/null; then
    printf '%-14s %-12s %s\n' "$BRIDGE" "$NET.1" "present"
  fi
  if ip link show dev "$BUILD_BRIDGE" &>/dev/null; then
    printf '%-14s %-12s %s\n' "$BUILD_BRIDGE" "${BUILD_BRIDGE_ADDR%/*}" "present"
  fi
  if iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; then
    printf '%-14s %-12s %s\n' iptables - "FORWARD rule for $BRIDGE present"
  fi
  if ((!any)); then
    echo "estate is down"
    return 1
  fi
  return "$bad"
}

# A clean machine's /etc: this one's, without the deploy user (and its group memberships), with
# host keys of its own; HAProxy's and sshd's configuration as their packages installed them.
bare_prepare() { # NODE
  local name=$1 dir
  dir=$(node_dir "$name")
  rm -rf "$dir"
  install -d -m 0755 "$dir/root" "$dir/lib-haproxy"
  cp -a /etc "$dir/root/etc"
  if grep -q "^$DEPLOY_USER:" "$dir/root/etc/passwd"; then userdel --prefix "$dir/root" "$DEPLOY_USER"; fi
  rm -f "$dir/root/etc/ssh/ssh_host_"*
  ssh-keygen -A -f "$dir/root" >/dev/null
  [[ $(node_kind "$name") == bare-host ]] && ensure_engine_config "$name"
  return 0
}

cmd_bare() { # up|down
  local name
  [[ ${1:-} == up || ${1:-} == down ]] || die "usage: estate.sh bare up|down"
  ((EUID == 0)) || die "must run as root"
  if [[ -f $RUN_DIR/estate-dir ]]; then ESTATE_DIR=$(cat "$RUN_DIR/estate-dir"); fi
  check_estate_dir
  take_lock
  for name in lb-bare bare1; do teardown_node "$name"; done
  rm -rf "$ESTATE_DIR/bare"
  [[ $1 == up ]] || return 0
  [[ -f $RUN_DIR/estate-dir ]] || die "the estate is down: run estate.sh up first"
  for name in lb-bare bare1; do
    bare_prepare "$name"
    create_netns "$name"
    launch_node "$name"
  done
  wait_ready lb-bare bare1
  log "bare: lb-bare $(node_addr lb-bare), bare1 $(node_addr bare1): Docker, sshd and HAProxy as installed, no deploy user"
}

cmd_exec() {
  (($# >= 2)) || die "usage: estate.sh exec NODE CMD..."
  local name=${1#dae-}
  node_kind "$name" >/dev/null
  shift
  # A DOCKER_HOST meant for the runner engine would hide the node's own engine.
  in_node "$name" env -u DOCKER_HOST -u DOCKER_CONTEXT "$@"
}

cmd_reload() { # ENV (each of its load balancers) or LB_NODE
  local nodes name
  case ${1:-} in
    staging | production) nodes=$(env_lbs "$1") ;;
    lb-staging | lb-production | lb-production2) nodes=$1 ;;
    *) die "usage: estate.sh reload staging|production|LB_NODE" ;;
  esac
  for name in $nodes; do node_pid "$name" >/dev/null || die "$name is not running"; done
  take_lock
  for name in $nodes; do lb_reload "$name"; done
}

case ${1:-} in
  up | down | status | exec | reload | bare) "cmd_$1" "${@:2}" ;;
  _node) node_main "${@:2}" ;;
  *) sed -n '2,9s/^# \{0,1\}//p' "$SCRIPT" >&2 && exit 2 ;;
esac
