#!/usr/bin/env bash
# Proves the top-level Dockerfile builds and the image serves, on a machine with no Docker engine
# (run by hand as root; not part of `make test`):
#   1. installs debootstrap, podman and buildah if missing;
#   2. debootstraps a Debian bookworm root (cached in $BACKFLOW_IMAGE_CACHE) and imports it as the
#      local base image debian:bookworm-slim, the name the Dockerfile's FROM uses;
#   3. builds the Dockerfile with buildah (chroot isolation, vfs storage, never pulls);
#   4. starts backflow-server inside the image with `buildah run` (host network namespace, a free
#      127.0.0.1 port), waits for `backflow health` inside the image to print SERVING, runs a
#      stateless eval and a short load run, sends SIGTERM and requires exit code 0 (graceful drain),
#      and checks the load run's model was left checkpointed in the data dir.
# Every wait is bounded. Environment: BACKFLOW_IMAGE_CACHE (default /var/tmp/backflow-image),
# BACKFLOW_IMAGE (default backflow:dev), BUILD_TIMEOUT seconds (default 5400), DEBIAN_MIRROR
# (default: the Debian mirror this machine's apt is configured with; the image's apt gets the same
# sources).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BACKFLOW_IMAGE_CACHE:-/var/tmp/backflow-image}
IMAGE=${BACKFLOW_IMAGE:-backflow:dev}
BASE=debian:bookworm-slim
BUILD_TIMEOUT=${BUILD_TIMEOUT:-5400}
GRACE_MS=20000  # the image's --shutdown-grace-ms
BUILDAH=(buildah --storage-driver vfs)
PODMAN=(podman --storage-driver vfs)
HEAVY=(nice -n 19 ionice -c3)  # the machine is shared: builds yield to everything else

step() { printf '== %s %s\n' "$(date +%T)" "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (buildah with vfs storage and debootstrap need it)"

install_tools() {
  local missing=() pkg
  for pkg in debootstrap podman buildah; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# This machine's Debian apt sources (deb822 debian.sources, else the debian lines of sources.list):
# the image reads packages from the mirror the host is configured with.
host_debian_sources() {
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cat /etc/apt/sources.list.d/debian.sources
  elif [ -f /etc/apt/sources.list ]; then
    grep -E '^deb .*debian' /etc/apt/sources.list
  fi
}

# The first Debian archive URI of those sources (the one that is not -security), for debootstrap.
host_mirror() {
  host_debian_sources | awk '
    /^URIs:/ && $2 !~ /security/ { print $2; exit }
    /^deb / && $2 !~ /security/ { print $2; exit }'
}

MIRROR=${DEBIAN_MIRROR:-$(host_mirror)}

write_sources() {
  rm -f "$1/etc/apt/sources.list" "$1/etc/apt/sources.list.d/debian.sources"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    host_debian_sources >"$1/etc/apt/sources.list.d/debian.sources"
  else
    host_debian_sources >"$1/etc/apt/sources.list"
  fi
}

make_base_image() {
  local rootfs="$CACHE/rootfs"
  if [ ! -f "$CACHE/rootfs.complete" ]; then
    step "debootstrap bookworm (minbase) into $rootfs"
    mkdir -p "$CACHE"
    rm -rf "$CACHE/rootfs.tmp" "$rootfs"
    "${HEAVY[@]}" timeout 1800 debootstrap --variant=minbase bookworm "$CACHE/rootfs.tmp" "$MIRROR" \
      >"$CACHE/debootstrap.log" 2>&1 || fail "debootstrap failed: see $CACHE/debootstrap.log"
    write_sources "$CACHE/rootfs.tmp"
    rm -rf "$CACHE"/rootfs.tmp/var/cache/apt/archives/*.deb "$CACHE"/rootfs.tmp/var/lib/apt/lists/*
    mv "$CACHE/rootfs.tmp" "$rootfs"
    touch "$CACHE/rootfs.complete"
    "${PODMAN[@]}" rmi -f "docker.io/library/$BASE" "localhost/$BASE" >/dev/null 2>&1 || true
  fi
  if ! "${PODMAN[@]}" image exists "docker.io/library/$BASE"; then
    step "importing $rootfs as $BASE"
    tar -C "$rootfs" -c . | "${PODMAN[@]}" import - "$BASE" >/dev/null
    "${PODMAN[@]}" tag "localhost/$BASE" "docker.io/library/$BASE"
  fi
  local id
  id=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "docker.io/library/$BASE")
  step "base image: ${id:0:12}"
}

build_image() {
  step "buildah bud -t $IMAGE (build log: $CACHE/build.log)"
  local start=$SECONDS
  # --format docker: the OCI format has no HEALTHCHECK. --layers: a rerun reuses unchanged steps.
  if ! (cd "$ROOT" && "${HEAVY[@]}" timeout "$BUILD_TIMEOUT" "${BUILDAH[@]}" bud --pull=never \
        --isolation chroot --format docker --layers -t "$IMAGE" -f Dockerfile . \
        >"$CACHE/build.log" 2>&1); then
    tail -n 30 "$CACHE/build.log" >&2
    fail "image build failed (full log: $CACHE/build.log)"
  fi
  step "built $IMAGE in $((SECONDS - start)) s"
  local format='user={{.Docker.Config.User}} ports={{.Docker.Config.ExposedPorts}}'
  format+=' volumes={{.Docker.Config.Volumes}} stopsignal={{.Docker.Config.StopSignal}}'
  format+=$'\nhealthcheck={{.Docker.Config.Healthcheck.Test}}\ncmd={{.Docker.Config.Cmd}}'
  "${BUILDAH[@]}" inspect --type image --format "$format" "$IMAGE"
  echo
  "${PODMAN[@]}" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$IMAGE"
}

CTR=""
RUNNER=""
cleanup() {
  local pid
  if [ -n "$RUNNER" ] && kill -0 "$RUNNER" 2>/dev/null; then
    if pid=$(server_pid); then kill -KILL "$pid" 2>/dev/null || true; fi
    kill "$RUNNER" 2>/dev/null || true
    wait "$RUNNER" 2>/dev/null || true
  fi
  [ -n "$CTR" ] && "${BUILDAH[@]}" rm "$CTR" >/dev/null 2>&1 || true
}
trap cleanup EXIT

in_image() { "${BUILDAH[@]}" run --isolation chroot "$CTR" -- "$@"; }

# The backflow-server process under our own `buildah run` (chroot isolation shares the host's
# PID namespace), found by walking that process's descendants.
server_pid() {
  local frontier=("$RUNNER") next pid child
  while [ ${#frontier[@]} -gt 0 ]; do
    next=()
    for pid in "${frontier[@]}"; do
      for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
        # By argv[0]: the process name is "exe" (buildah-chroot-exec runs it through an fd).
        if [ "$(ps -o args= -p "$child" | cut -d' ' -f1)" = /usr/local/bin/backflow-server ]; then
          echo "$child"; return 0
        fi
        next+=("$child")
      done
    done
    frontier=("${next[@]+"${next[@]}"}")
  done
  return 1
}

serve() {
  CTR=$("${BUILDAH[@]}" from --pull=never "$IMAGE")
  local port
  port=$(/usr/bin/python3 -c \
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  step "running as: $(in_image id)"
  step "starting backflow-server in $CTR on 127.0.0.1:$port"
  # Not through in_image: $! must be the buildah process itself, not a subshell around it.
  "${BUILDAH[@]}" run --isolation chroot "$CTR" -- backflow-server --listen="127.0.0.1:$port" \
    --data-dir=/var/lib/backflow --shutdown-grace-ms=$GRACE_MS >"$CACHE/server.log" 2>&1 &
  RUNNER=$!
  local health="" deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$RUNNER" 2>/dev/null || { cat "$CACHE/server.log" >&2; fail "server exited early"; }
    health=$(in_image env BACKFLOW_SERVER="127.0.0.1:$port" backflow --timeout 2 health 2>&1) \
      && break
    sleep 1
  done
  [ "$health" = SERVING ] || fail "no SERVING within 60 s (last: $health)"
  step "backflow health (inside the image): $health"

  step "what the image ships besides the server: the CLI, the protos, the Python package"
  in_image backflow --help | head -n 3
  in_image backflow --help | grep -q '^Usage: backflow' || fail "backflow --help printed no usage"
  in_image test -f /usr/local/share/backflow/proto/backflow/v1/service.proto \
    || fail "the protos are missing"
  in_image python3 -c "import backflow, backflow.v1.service_pb2_grpc; print(backflow.__file__)" \
    || fail "the Python package does not import"
  in_image env BACKFLOW_SERVER="127.0.0.1:$port" python3 -c \
    "from backflow import Client; c = Client('127.0.0.1:$port'); print('python health:', c.health())"

  step "backflow eval staged.pbtxt --set x=3 --set y=-4"
  local eval_out
  eval_out=$(in_image timeout 60 backflow --server "127.0.0.1:$port" --timeout 30 \
    eval /usr/local/share/backflow/models/seeds/staged.pbtxt --set x=3 --set y=-4)
  echo "$eval_out"
  # (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2) at x=3, y=-4 (tests/engine/api/evaluate_test.cc)
  grep -qx 'f = 1.545644884' <<<"$eval_out" || fail "eval gave the wrong f"
  step "backflow-load mlp_tanh.pbtxt --rpc mixed --concurrency 2 --duration 3 --keep-model"
  in_image timeout 120 backflow-load --server "127.0.0.1:$port" \
    --model /usr/local/share/backflow/models/mlp_tanh.pbtxt --rpc mixed --concurrency 2 --duration 3 \
    --warmup 1 --keep-model
  in_image backflow --server "127.0.0.1:$port" models list
}

# SIGTERM to the server: it must exit 0 within the grace (plus slack) and leave the load run's
# model checkpointed.
stop_and_check() {
  local pid
  pid=$(server_pid) || fail "server process not found under buildah run ($RUNNER)"
  step "SIGTERM to backflow-server (pid $pid)"
  kill -TERM "$pid"
  local waited=0
  while kill -0 "$RUNNER" 2>/dev/null && [ $waited -lt $((GRACE_MS / 1000 + 15)) ]; do
    sleep 1; waited=$((waited + 1))
  done
  kill -0 "$RUNNER" 2>/dev/null && fail "server still running $waited s after SIGTERM"
  local rc=0
  wait "$RUNNER" || rc=$?
  RUNNER=""
  step "server log (last lines):"
  tail -n 8 "$CACHE/server.log"
  [ $rc -eq 0 ] || fail "server exit code $rc after SIGTERM (want 0)"
  step "server exited 0 after SIGTERM (drained in ~$waited s)"
  step "data dir after shutdown:"
  in_image sh -c 'ls -ln /var/lib/backflow; ls /var/lib/backflow/models/*/'
  in_image sh -c 'ls /var/lib/backflow/models/*/checkpoints/*.auto.bfck' >/dev/null \
    || fail "the load run's model was not checkpointed on shutdown"
}

install_tools
[ -n "$MIRROR" ] || fail "no Debian mirror in this machine's apt sources; set DEBIAN_MIRROR"
make_base_image
build_image
serve
stop_and_check
step "PASS: $IMAGE builds, serves SERVING, evaluates, drains on SIGTERM with exit 0"
