#!/usr/bin/env bash
# The performance table (what `make bench` runs): builds the release preset, runs the C++
# benchmarks (bench/*_bench.cc) and, where PyTorch is installed, bench/pytorch_lenet.py, then
# prints one table of training-step times, backflow against PyTorch, all measured in this run.
#
# Environment:
#   BACKFLOW_BENCH_INSTALL_TORCH=1  install Debian's python3-torch and libopenblas0 if torch is
#                                   missing (apt-get); `make bench` sets it
#   BACKFLOW_BENCH_BUILD_DIR=DIR    build in DIR (Release) instead of the release preset's tree
#   BACKFLOW_BENCH_PYTHON=PATH      a Python with torch to try first (then python3, /usr/bin/python3)
#   BACKFLOW_BENCH_THREADS=N        PyTorch's thread count (default: nproc, as oneTBB uses)
#   BACKFLOW_BENCH_MIN_TIME=S       seconds each training-step measurement runs for (default 2)
#   BACKFLOW_BENCH_ROUNDS=N         interleaved rounds of backflow then PyTorch (default 5)
#
# A shared or virtual machine drifts by tens of percent within a minute, so the training steps
# are measured in interleaved rounds (backflow, PyTorch, backflow, ...) and the table reports
# each side's median and range, and in how many rounds backflow was faster.
set -euo pipefail
cd "$(dirname "$0")/.."

threads="${BACKFLOW_BENCH_THREADS:-$(nproc)}"
min_time="${BACKFLOW_BENCH_MIN_TIME:-2}"
rounds="${BACKFLOW_BENCH_ROUNDS:-5}"
targets=(backflow-gates-bench backflow-train-bench)

if [[ -n "${BACKFLOW_BENCH_BUILD_DIR:-}" ]]; then
  cmake -S . -B "$BACKFLOW_BENCH_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BACKFLOW_BENCH_BUILD_DIR" --target "${targets[@]}"
  bin="$BACKFLOW_BENCH_BUILD_DIR/bin"
else
  cmake --preset release >/dev/null
  cmake --build --preset release --target "${targets[@]}"
  bin="build/bin"  # the release preset's BACKFLOW_BIN_DIR
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== gates (batch 64): forward and forward+backward through Program::Run"
"$bin/backflow-gates-bench"
echo
# The first Python that imports torch: python3 on PATH may be another installation (pyenv, a
# venv) than the system one Debian's python3-torch installs into.
torch_python() {
  local py
  for py in ${BACKFLOW_BENCH_PYTHON:-} python3 /usr/bin/python3; do
    if "$py" -c 'import torch' >/dev/null 2>&1; then
      echo "$py"
      return 0
    fi
  done
  return 1
}
if ! torch_python >/dev/null && [[ "${BACKFLOW_BENCH_INSTALL_TORCH:-0}" == 1 ]]; then
  echo "installing python3-torch (BACKFLOW_BENCH_INSTALL_TORCH=1)"
  sudo=""
  if [[ "$(id -u)" -ne 0 ]]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3-torch libopenblas0
fi
py=""
if py="$(torch_python)"; then
  echo
  echo "== PyTorch $("$py" -c 'import torch; print(torch.__version__)') ($py), $threads threads"
else
  echo
  echo "PyTorch is not installed: the table has no PyTorch column. To compare, run"
  echo "  apt-get install python3-torch libopenblas0   (or: make bench)"
fi

echo
echo "== training steps (batch 64), $rounds interleaved rounds of ${min_time}s each"
for ((r = 1; r <= rounds; r++)); do
  "$bin/backflow-train-bench" --benchmark_min_time="$min_time" \
    --benchmark_out="$out/train.$r.json" --benchmark_out_format=json >/dev/null 2>"$out/train.$r.err" ||
    { cat "$out/train.$r.err"; exit 1; }
  if [[ -n "$py" ]]; then
    "$py" bench/pytorch_lenet.py --threads "$threads" --min-seconds "$min_time" >"$out/torch.$r.txt"
  else
    : >"$out/torch.$r.txt"
  fi
  echo "round $r/$rounds done"
done

echo
python3 bench/summarize.py "$out" "$rounds"
