"""Prints bench/run.sh's training-step table from its interleaved rounds.

Usage: summarize.py DIR ROUNDS, where DIR holds train.R.json (Google Benchmark's JSON from
backflow-train-bench) and torch.R.txt (bench/pytorch_lenet.py's lines) for R = 1..ROUNDS.
"""
import json
import statistics
import sys


def load(out, rounds):
    backflow, torch, errors = {}, {}, {}
    for r in range(1, rounds + 1):
        for b in json.load(open(f"{out}/train.{r}.json"))["benchmarks"]:
            model = b["name"].split("/")[1]  # "TrainStep/lenet5/real_time" -> "lenet5"
            if "step_time" in b:
                backflow.setdefault(model, []).append(b["step_time"] * 1e3)  # s -> ms
            else:
                errors[model] = b.get("error_message", "failed")
        for line in open(f"{out}/torch.{r}.txt"):
            fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            if "model" in fields:
                torch.setdefault(fields["model"], []).append(float(fields["ms_per_step"]))
    return backflow, torch, errors


def cell(times):
    return f"{statistics.median(times):7.3f} ({min(times):.2f}-{max(times):.2f})"


def main(out, rounds):
    backflow, torch, errors = load(out, rounds)
    print(f"{'train step, batch 64':<21}{'backflow ms, median (range)':>30}"
          f"{'PyTorch ms, median (range)':>30}{'ratio':>8}{'backflow faster':>18}")
    for model in sorted(set(backflow) | set(errors)):
        if model in errors:
            print(f"{model:<21}  backflow failed: {errors[model]}")
            continue
        ours, theirs = backflow[model], torch.get(model)
        if not theirs:
            print(f"{model:<21}{cell(ours):>30}{'n/a':>30}")
            continue
        ratio = statistics.median(ours) / statistics.median(theirs)
        wins = sum(a < b for a, b in zip(ours, theirs))
        print(f"{model:<21}{cell(ours):>30}{cell(theirs):>30}{ratio:>7.2f}x"
              f"{wins:>10}/{len(ours)} rounds")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
