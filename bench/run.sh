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
#   BACKFLOW_BENCH_MIN_TIME=S       seconds each training-step benchmark runs for (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."

threads="${BACKFLOW_BENCH_THREADS:-$(nproc)}"
min_time="${BACKFLOW_BENCH_MIN_TIME:-3}"
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
echo "== training steps (batch 64)"
"$bin/backflow-train-bench" --benchmark_min_time="$min_time" \
  --benchmark_out="$out/train.json" --benchmark_out_format=json

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
: >"$out/torch.txt"
if py="$(torch_python)"; then
  echo
  echo "== PyTorch $("$py" -c 'import torch; print(torch.__version__)') ($py), $threads threads"
  "$py" bench/pytorch_lenet.py --threads "$threads" --min-seconds "$min_time" |
    tee "$out/torch.txt"
else
  echo
  echo "PyTorch is not installed: the table has no PyTorch column. To compare, run"
  echo "  apt-get install python3-torch    (or: BACKFLOW_BENCH_INSTALL_TORCH=1 make bench)"
fi

echo
python3 - "$out/train.json" "$out/torch.txt" <<'EOF'
import json
import sys

backflow = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    # "TrainStep/lenet5/real_time" -> "lenet5"
    # A benchmark that failed carries its error instead of counters.
    if "step_time" in b:
        backflow[b["name"].split("/")[1]] = b["step_time"] * 1e3  # seconds -> ms
    else:
        backflow[b["name"].split("/")[1]] = b.get("error_message", "failed")
torch = {}
for line in open(sys.argv[2]):
    fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
    if "model" in fields:
        torch[fields["model"]] = float(fields["ms_per_step"])

print(f"{'train step, batch 64':<22}{'backflow ms':>13}{'PyTorch ms':>13}{'backflow/PyTorch':>18}")
for model, ms in backflow.items():
    if isinstance(ms, str):
        print(f"{model:<22}  backflow failed: {ms}")
        continue
    theirs = torch.get(model)
    ratio = f"{ms / theirs:.2f}x" if theirs else "n/a"
    theirs = f"{theirs:.3f}" if theirs else "n/a"
    print(f"{model:<22}{ms:>13.3f}{theirs:>13}{ratio:>18}")
EOF
