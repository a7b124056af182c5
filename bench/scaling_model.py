#!/usr/bin/env python3
"""The cost model of a data-parallel step (docs/scaling.md, "A cost model"), as a table.

Each of N ranks computes its own shard of b rows in T_c (forward and backward, measured on one
machine), then the ranks sum the gradients, S bytes, with a ring allreduce:

    T_ar(N) = 2 (N - 1) alpha + 2 (N - 1) / N * S / beta

alpha being one message's latency and beta the network's bandwidth. The gradients go in k
buckets (server/data_parallel/mpi_reducer.h), each summed as soon as backward filled it, so all
but the last bucket's share can hide behind the rest of backward (T_b, about 2/3 of T_c):

    exposed(N) = max(T_ar / k, T_ar - T_b)        T_step(N) = T_c + exposed(N)

With b rows per rank fixed (weak scaling, as Horovod reports it), N ranks do N b rows a step, and
the scaling efficiency is samples/s at N over N x samples/s at 1: T_c / T_step(N).

Usage: bench/scaling_model.py [--latency-us 25] [--bucket-mib 4]
"""
import argparse
import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Compute per step on the 2-core machine of docs/PERFORMANCE.md (in process, the rows per rank of
# its workloads): LeNet-5 at batch 64 9,970 samples/s, the CIFAR CNN at batch 32 1,750 samples/s,
# the ResNet at batch 64 about 2,100 samples/s (1,718-3,301 in its runs).
WORKLOADS = [
    ("LeNet-5", "lenet5.pbtxt", 64, 64 / 9970),
    ("CIFAR CNN", "cifar_cnn.pbtxt", 32, 32 / 1750),
    ("ResNet", "resnet_fmnist.pbtxt", 64, 64 / 2100),
]


def parameter_bytes(graph_file):
    """float32 bytes of every parameter a graph file declares."""
    total = 0
    for line in (ROOT / "models" / graph_file).read_text().splitlines():
        if not line.startswith("parameters {"):
            continue
        listed = re.search(r"shape: \[([^\]]*)\]", line)
        dims = ([int(d) for d in listed.group(1).split(",")] if listed
                else [int(d) for d in re.findall(r"shape: (\d+)", line)])
        total += math.prod(dims)
    return 4 * total


def efficiency(ranks, compute_s, size_bytes, buckets, latency_s, bandwidth_bytes_s):
    allreduce = (2 * (ranks - 1) * latency_s
                 + 2 * (ranks - 1) / ranks * size_bytes / bandwidth_bytes_s)
    backward = 2 / 3 * compute_s
    exposed = max(allreduce / buckets, allreduce - backward)
    return compute_s / (compute_s + exposed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-us", type=float, default=25.0,
                        help="one message's latency (default 25 us: TCP in one data centre)")
    parser.add_argument("--bucket-mib", type=float, default=4.0,
                        help="--data-parallel-bucket-bytes in MiB (default 4)")
    args = parser.parse_args()
    ranks_list = [8, 16, 32, 64]
    print(f"latency {args.latency_us:g} us, buckets of {args.bucket_mib:g} MiB; "
          "efficiency = samples/s at N / (N x samples/s at 1)")
    print(f"{'model':<10} {'rows':>4} {'T_c ms':>7} {'params':>9} {'buckets':>7} {'Gbit/s':>6}  "
          + "  ".join(f"{'N=' + str(n):>5}" for n in ranks_list))
    for name, graph_file, rows, compute_s in WORKLOADS:
        size = parameter_bytes(graph_file)
        buckets = max(1, math.ceil(size / (args.bucket_mib * 2**20)))
        for gbit in (10, 100):
            cells = [efficiency(n, compute_s, size, buckets, args.latency_us * 1e-6, gbit * 1e9 / 8)
                     for n in ranks_list]
            print(f"{name:<10} {rows:>4} {compute_s * 1e3:>7.1f} {size / 4:>9,.0f} {buckets:>7} "
                  f"{gbit:>6}  " + "  ".join(f"{100 * e:>4.0f}%" for e in cells))


if __name__ == "__main__":
    main()
