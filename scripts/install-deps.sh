#!/usr/bin/env bash
# Installs the Debian packages backflow builds and tests with. Idempotent: installs only what is
# missing, so a second run is a no-op that needs no network.
#
# Usage: scripts/install-deps.sh [GROUP...]
# With no argument, what `make build` and `make test` need. A GROUP adds packages only some
# targets need: `fuzz` (make fuzz) adds clang-14 and libFuzzer.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  mold  # links the ~130 test executables many times faster than GNU ld (CMakeLists.txt)
  protobuf-compiler libprotobuf-dev
  libgrpc++-dev protobuf-compiler-grpc
  libtbb-dev libdnnl-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  zlib1g-dev
  dataset-fashion-mnist  # real data for the learning tests: /usr/share/datasets/fashion-mnist
  python3-grpcio python3-protobuf python3-numpy python3-pytest  # the Python client, its tests
  python3-yaml  # the deploy manifests test
  ocl-icd-opencl-dev  # dnnl-config.cmake requires OpenCL (only a Recommends of libdnnl-dev)
  nlohmann-json3-dev  # JSON output of the CLI and backflow-load
  libzip-dev  # NumPy .npz archives for backflow train --data FILE.npz
  libonnx-dev  # ONNX's message definitions (onnx.proto) and its model checker, for import/export
  python3-onnx  # the Python tests check exported models with onnx.checker
  python3-tqdm  # the Python client's progress bar in Client.fit (optional for the client)
  # pip install clients/python and make python-wheel (setuptools builds, wheel packs), and the
  # test that installs the client into a virtual environment made with venv
  python3-pip python3-setuptools python3-wheel python3-venv
  libssl-dev  # SHA-256 and constant-time comparison of --auth-tokens digests (OpenSSL libcrypto)
  openssl  # deploy/gen-certs.sh makes the test CA and certificates the TLS tests use
  libopenmpi-dev openmpi-bin  # data-parallel jobs: libbackflow_mpi.so and mpirun (docs/scaling.md)
  prometheus-cpp-dev  # the /metrics series and their text format (prometheus-cpp's core)
  libcpp-httplib-dev  # the HTTP endpoint of --metrics-listen (/metrics, the status page)
  prometheus  # the test in which a real Prometheus scrapes the server; promtool checks /metrics
  chromium  # the status page test opens the page in headless Chromium ...
  python3-websocket  # ... and drives it over the DevTools protocol (websocket-client)
  nodejs  # the Node.js interop test (tests/interop/node): @grpc/grpc-js against the server
)
# npm, which installs that test's packages from its lockfile, is a package of its own in Debian
# and part of some other Node.js builds (NodeSource's): only where the machine has none.
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(npm); fi

# The fuzz preset (CMakePresets.json, docs/fuzzing.md): clang-14 with its sanitizer runtimes
# (libclang-rt-14-dev holds -fsanitize=fuzzer's libFuzzer) and libFuzzer's own package.
FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev libfuzzer-14-dev)

for group in "$@"; do
  case "$group" in
    fuzz) PACKAGES+=("${FUZZ_PACKAGES[@]}") ;;
    *) echo "install-deps: unknown group '$group' (known: fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
