#!/usr/bin/env python3
"""The ONNX end-to-end fixture of tests/clients/onnx_train_test.cc.

Regenerate (needs torch and onnx; run by hand, never in CI, and commit what it writes):

    /usr/bin/python3 tests/clients/onnx/generate.py

It writes, next to this script:

    resnet_fmnist.onnx   bench/torch_models.py's ResNetFmnist (seeded 1), exported the way
                         docs/onnx.md tells users to export a model for training: opset 14, the
                         batch open ("N"), training mode, no constant folding; input "images"
                         [N, 1, 28, 28], output "logits" [N, 10]
    torch_recipe.json    the recipe and what PyTorch reaches with it: the same module, from the
                         same initial values, trained for one epoch on Fashion-MNIST's 60,000
                         training images (pixels / 255, batches of 64 shuffled per epoch, the
                         last partial batch kept), SGD lr 0.05 momentum 0.9, mean softmax
                         cross-entropy; test accuracy on the 10,000 test images in eval mode, for
                         three shuffling seeds (backflow shuffles with its own generator, so the
                         test compares against the spread of these runs, not one of them)
"""

import gzip
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from torch_models import ResNetFmnist  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
RECIPE = {"epochs": 1, "batch": 64, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9,
          "loss": "softmax_cross_entropy"}
SEEDS = (1, 2, 3)


def idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def export(path):
    torch.manual_seed(1)
    model = ResNetFmnist()
    torch.onnx.export(model, torch.rand(2, 1, 28, 28), path, input_names=["images"],
                      output_names=["logits"],
                      dynamic_axes={"images": {0: "N"}, "logits": {0: "N"}}, opset_version=14,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    onnx.checker.check_model(onnx.load(path), full_check=True)


def initial_state(path):
    """The module with exactly the initializer values in the .onnx file."""
    model = ResNetFmnist()
    values = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
              for t in onnx.load(path).graph.initializer}
    state = model.state_dict()
    for name in state:
        if name in values:
            state[name] = values[name]
    model.load_state_dict(state)
    return model


def train_and_test(path, seed, train, test):
    model = initial_state(path)
    opt = torch.optim.SGD(model.parameters(), lr=RECIPE["lr"], momentum=RECIPE["momentum"])
    x = torch.from_numpy(train[0].astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(train[1].astype(np.int64))
    g = torch.Generator().manual_seed(seed)
    model.train()
    order = torch.randperm(len(y), generator=g)
    for start in range(0, len(y), RECIPE["batch"]):
        rows = order[start:start + RECIPE["batch"]]
        opt.zero_grad()
        F.cross_entropy(model(x[rows]), y[rows]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        tx = torch.from_numpy(test[0].astype(np.float32) / 255).unsqueeze(1)
        hits = (model(tx).argmax(1) == torch.from_numpy(test[1].astype(np.int64))).sum().item()
    return hits / len(test[1])


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    path = os.path.join(HERE, "resnet_fmnist.onnx")
    export(path)
    train = (idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz"))
    test = (idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz"))
    accuracies = [train_and_test(path, s, train, test) for s in SEEDS]
    out = {"recipe": RECIPE, "seeds": list(SEEDS), "test_accuracy": accuracies,
           "torch": torch.__version__}
    with open(os.path.join(HERE, "torch_recipe.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
