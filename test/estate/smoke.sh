#!/usr/bin/env bash
# Proves a running estate (estate.sh up) does what the integration tests rely on, by hand and
# through the same doors the action uses: build with a secret on the runner engine, push with
# credentials, pull and run on every host over SSH with strict host keys, serve through both
# HAProxy frontends, reach the Docker and HAProxy sockets by SSH stream-local forwarding, keep
# drain state across a reload, and keep hosts apart. Leaves no containers behind.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
estate_dir=${ESTATE_DIR:-/var/lib/deploy-action-estate}
json=$estate_dir/estate.json
version=${SMOKE_VERSION:-v0.0.1}

step() { printf '[smoke] %s\n' "$*"; }
fail() { printf '[smoke] FAIL: %s\n' "$*" >&2; exit 1; }
q() { jq -r "$1" "$json"; }

[[ -f $json ]] || fail "no $json: run estate.sh up first"
registry=$(q .registry.address)
reg_user=$(q .registry.username)
reg_password=$(q .registry.password)
cli=$(q .dockerCli)
image=$registry/clay/demo
mapfile -t hosts < <(q '.environments[].hosts[]')
DOCKER_HOST=$(q .runnerDockerHost)
export DOCKER_HOST DOCKER_BUILDKIT=1

work=$(mktemp -d)
export DOCKER_CONFIG=$work/docker
forwards=()
ssh_opts=(-i "$(q .sshKey)" -o UserKnownHostsFile="$(q .knownHosts)" -o StrictHostKeyChecking=yes
  -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR)
# shellcheck disable=SC2029 # the command is for the remote shell
on() { local host=$1; shift; ssh "${ssh_opts[@]}" "deploy@$host" "$@"; }

remove_containers() {
  local h
  for h in "${hosts[@]}"; do on "$h" docker rm -f smoke-master smoke-backup >/dev/null 2>&1 || true; done
}
cleanup() {
  if ((${#forwards[@]})); then kill "${forwards[@]}" 2>/dev/null || true; fi
  remove_containers
  rm -rf "$work"
}
trap cleanup EXIT

# Opens an SSH stream-local forward of a remote socket to a local one, as the action does.
forward() { # HOST REMOTE_SOCKET LOCAL_SOCKET
  local i
  ssh "${ssh_opts[@]}" -N -o ExitOnForwardFailure=yes -L "$3:$2" "deploy@$1" &
  forwards+=("$!")
  for ((i = 0; i < 50; i++)); do [[ -S $3 ]] && return 0; sleep 0.1; done
  fail "no forward of $1:$2"
}

until_true() { # SECONDS DESCRIPTION CMD...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do ((SECONDS < deadline)) || fail "$what"; sleep 0.3; done
}

remove_containers

step "build $image:$version with a build secret on the runner engine"
bash "$repo/test/app/prepare.sh"
token="smoke-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
# --no-cache: BuildKit leaves secrets out of the cache key, a cached layer would hold an old one.
NPM_TOKEN=$token "$cli" build -q --no-cache --secret id=NPM_TOKEN,env=NPM_TOKEN \
  --build-arg DEPLOY_VERSION="$version" -t "$image:$version" "$repo/test/app" >/dev/null
[[ $("$cli" run --rm --network none "$image:$version" cat /www/secret-sha) == "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" ]] ||
  fail "the image does not hold the digest of the build secret"
"$cli" save -o "$work/image.tar" "$image:$version"
[[ $(grep -acF "$token" "$work/image.tar") == 0 ]] || fail "the build secret leaked into the image"

step "a BROKEN=1 build fails its health check"
"$cli" build -q --build-arg DEPLOY_VERSION="$version-broken" --build-arg BROKEN=1 \
  -t "$image:$version-broken" "$repo/test/app" >/dev/null
if "$cli" run --rm --network none "$image:$version-broken" sh -c 'httpd -p 3000 -h /www && wget -q -O- 127.0.0.1:3000/healthcheck' >/dev/null 2>&1; then
  fail "the broken app answers its health check"
fi
"$cli" rmi "$image:$version-broken" >/dev/null

step "push to $registry with a temporary DOCKER_CONFIG"
printf '%s' "$reg_password" | "$cli" login -u "$reg_user" --password-stdin "$registry" >/dev/null 2>&1
"$cli" push "$image:$version" >/dev/null

for h in "${hosts[@]}"; do
  step "$h: login, pull, run master (50000) and backup (50001) over ssh"
  printf '%s' "$reg_password" | on "$h" docker login -u "$reg_user" --password-stdin "$registry" >/dev/null 2>&1
  on "$h" docker pull -q "$image:$version" >/dev/null
  on "$h" docker run -d --init --name smoke-master -p 50000:3000 "$image:$version" >/dev/null
  on "$h" docker run -d --init --name smoke-backup -p 50001:3000 "$image:$version" >/dev/null
done

admin() { printf '%s\n' "$1" | socat - "UNIX-CONNECT:$2"; }
servers_up() { # SOCKET: every server of backend app reports UP, and the spare slots (declared disabled) MAINT
  admin "show stat app 4 -1" "$1" | awk -F, 'NR > 1 && NF { n++; want = ($2 ~ /-spare$/) ? "MAINT" : "UP"; if ($18 != want) bad++ }
    END { exit !(n > 0 && !bad) }'
}
server_status() { admin "show stat app 4 -1" "$1" | awk -F, -v s="$2" '$2 == s { print $18 }'; }
answers_version() { [[ $(curl -s --max-time 2 "$1/") == "$version" ]]; }

for env in staging production; do
  lb=$(q ".environments.$env.lb.address")
  frontend=$(q ".environments.$env.lb.frontend")
  sock=$work/haproxy-$env.sock
  step "$env: HAProxy runtime API over ssh, every server UP, frontend answers $version"
  forward "$lb" "$(q ".environments.$env.lb.socket")" "$sock"
  deadline=$((SECONDS + 20))
  until servers_up "$sock"; do
    ((SECONDS < deadline)) || fail "$env: not every server of backend app is UP (its spare slots MAINT): $(admin "show stat app 4 -1" "$sock" | awk -F, 'NR > 1 && NF { printf "%s %s; ", $2, $18 }')"
    sleep 0.3
  done
  until_true 10 "$env: $frontend does not answer $version" answers_version "$frontend"
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$frontend/healthcheck") == 200 ]] || fail "$env: /healthcheck is not 200"
done

step "staging: drain state survives 'estate.sh reload'"
sock=$work/haproxy-staging.sock
admin "set server app/h1-master state drain" "$sock" >/dev/null
bash "$here/estate.sh" reload staging
[[ $(server_status "$sock" h1-master) == DRAIN ]] || fail "h1-master is not DRAIN after the reload"
admin "set server app/h1-master state ready" "$sock" >/dev/null
[[ $(server_status "$sock" h1-master) == UP ]] || fail "h1-master is not UP after 'ready'"

# The first two hosts are stg1 and stg2.
first=${hosts[0]} second=${hosts[1]}
step "$first: Docker API over an ssh-forwarded socket"
forward "$first" /var/run/docker.sock "$work/docker-$first.sock"
curl -sf --unix-socket "$work/docker-$first.sock" http://docker/containers/json | jq -e 'map(.Names[]) | index("/smoke-master")' >/dev/null ||
  fail "smoke-master is not listed through the forwarded socket"

step "hosts are apart: containers, cgroups and the deploy user's home"
id=$(on "$first" docker inspect -f '{{.Id}}' smoke-master)
if on "$second" docker inspect "$id" >/dev/null 2>&1; then fail "$second sees $first's container"; fi
stg1_ids=$(bash "$here/estate.sh" exec stg1 "$cli" ps -q --no-trunc)
[[ $stg1_ids == *"$id"* ]] || fail "'estate.sh exec stg1' does not reach stg1's engine"
pid=$(on "$first" docker inspect -f '{{.State.Pid}}' smoke-master)
grep -q ":/deploy-action-estate/ctr-stg1/" "/proc/$pid/cgroup" || fail "the container is not in stg1's cgroup"
on "$first" docker logout "$registry" >/dev/null
if on "$first" grep -qs "$registry" .docker/config.json || ! on "$second" grep -qs "$registry" .docker/config.json; then
  fail "a docker logout on $first reached $second: they share a home"
fi

step "a container started with --init stops at once on SIGTERM"
t0=$EPOCHREALTIME
on "$first" docker stop -t 10 smoke-backup >/dev/null
elapsed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
awk -v e="$elapsed" 'BEGIN { exit !(e < 3) }' || fail "docker stop took ${elapsed}s"

for h in "${hosts[@]}"; do on "$h" docker logout "$registry" >/dev/null; done
step "ok"
