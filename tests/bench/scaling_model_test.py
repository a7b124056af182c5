#!/usr/bin/env python3
"""bench/scaling_model.py (docs/scaling.md, "A cost model"): the parameter counts it reads from
the graph files and one efficiency worked by hand."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("scaling_model", ROOT / "bench" / "scaling_model.py")
model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(model)

# Both ways graph files write shapes: "shape: [6, 1, 5, 5]" and "shape: 16 shape: 1 ...".
assert model.parameter_bytes("lenet5.pbtxt") == 4 * 61706, model.parameter_bytes("lenet5.pbtxt")
assert model.parameter_bytes("cifar_cnn.pbtxt") == 4 * 1070794
assert model.parameter_bytes("resnet_fmnist.pbtxt") == 4 * 19706

# LeNet-5 at 64 rows a rank (6.42 ms), 8 ranks, 25 us, 10 Gbit/s, one bucket:
# allreduce 14 x 25 us + 1.75 x 246,824 B / 1.25 GB/s = 0.350 + 0.346 ms, all of it exposed.
compute = 64 / 9970
by_hand = compute / (compute + 14 * 25e-6 + 1.75 * 246824 / 1.25e9)
got = model.efficiency(8, compute, 246824, 1, 25e-6, 1.25e9)
assert abs(got - by_hand) < 1e-12 and abs(got - 0.9022) < 1e-3, (got, by_hand)
# One rank sends nothing; more buckets hide more behind backward.
assert model.efficiency(1, compute, 246824, 1, 25e-6, 1.25e9) == 1.0
assert model.efficiency(8, 0.0183, 4283176, 2, 25e-6, 1.25e9) > \
    model.efficiency(8, 0.0183, 4283176, 1, 25e-6, 1.25e9)
print("scaling_model: every check passed")
sys.exit(0)
