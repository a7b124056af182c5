#!/usr/bin/env python3
"""The training steps bench/train_bench.cc times, in PyTorch, for a side-by-side comparison.

Same models (models/lenet5.pbtxt, models/mlp_tanh.pbtxt), batch (64 synthetic 1x28x28 images,
labels cycling through the ten classes), loss (mean softmax cross-entropy), per-step accuracy
and optimizer (SGD, lr 0.01, momentum 0.9), on the CPU with a fixed thread count.

Prints one line per model, for bench/run.sh to read:
    pytorch model=lenet5 batch=64 threads=2 steps=812 ms_per_step=2.462 samples_per_s=25995.1

Needs Debian's python3-torch (1.13): apt-get install python3-torch.
"""

import argparse
import time

import torch
from torch import nn

BATCH = 64


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


def mlp_tanh():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.Tanh(), nn.Linear(256, 10))


MODELS = {"lenet5": lenet5, "mlp_tanh": mlp_tanh}


def time_steps(model, min_seconds, min_steps):
    """Mean wall-clock seconds of one step, after warm-up steps that are not counted."""
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(BATCH, 1, 28, 28, generator=generator)
    labels = torch.arange(BATCH) % 10
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(images)
        loss = loss_fn(logits, labels)
        loss.backward()
        optimizer.step()
        # backflow reports loss and accuracy with every step: read both back here too.
        return loss.item(), (logits.argmax(1) == labels).float().mean().item()

    for _ in range(5):
        step()
    steps, start = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - start < min_seconds:
        step()
        steps += 1
    return steps, (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--min-steps", type=int, default=20)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    for name in args.models:
        steps, seconds = time_steps(MODELS[name](), args.min_seconds, args.min_steps)
        print(f"pytorch model={name} batch={BATCH} threads={args.threads} steps={steps} "
              f"ms_per_step={seconds * 1e3:.3f} samples_per_s={BATCH / seconds:.1f}", flush=True)


if __name__ == "__main__":
    main()
