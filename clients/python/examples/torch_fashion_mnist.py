#!/usr/bin/python3
"""Trains a PyTorch model on a backflow server, then brings the trained weights back to PyTorch.

The steps of docs/tutorial-pytorch.md: define a torch.nn.Module, send it with from_torch (an ONNX
export in memory), train it with fit on NumPy arrays while a progress bar shows the loss, check
its predictions, copy the trained parameters into the module, and compare both sides' outputs.
Needs PyTorch where it runs (Debian: python3-torch); the server needs nothing more.

    build/bin/backflow-server &
    PYTHONPATH=build/release/python /usr/bin/python3 clients/python/examples/torch_fashion_mnist.py
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from torch import nn

from backflow import Client
from backflow.data import load_fashion_mnist

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]


class SmallCNN(nn.Module):
    """One convolution block and a linear classifier: 28x28 images -> 10 class scores."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 14 * 14, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv(images)))
        return self.fc(torch.flatten(x, 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("BACKFLOW_SERVER", "127.0.0.1:50051"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=20000, help="training images used")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    net = SmallCNN()
    x_train, y_train = load_fashion_mnist(train=True, limit=args.limit)
    x_test, y_test = load_fashion_mnist(train=False)

    with Client(args.server) as client:
        # 1. Create: the module goes over as ONNX; the loss is added on its output.
        info = client.from_torch(net, torch.zeros(1, 1, 28, 28), loss="softmax_cross_entropy",
                                 optimizer="sgd", lr=0.05, momentum=0.9, metrics=["accuracy"])
        print(f"model {info.id}: inputs {[i.name for i in info.inputs]}, "
              f"{info.parameter_count} parameters")
        try:
            # 2. Train: one Train stream per epoch; validation after each epoch.
            history = client.fit(info.id, x_train, y_train, epochs=args.epochs, batch_size=64,
                                 validation=(x_test, y_test))
            print("validation accuracy per epoch:", [round(a, 4) for a in history["val_accuracy"]])

            # 3. Predict: class scores for five test images.
            scores = client.infer(info.id, {"images": x_test[:5]}, outputs=["output"])["output"]
            for row, label in zip(scores.argmax(axis=1), y_test[:5]):
                print(f"predicted {CLASSES[row]:<12} true {CLASSES[int(label)]}")

            # 4. Back to PyTorch: parameters keep their state_dict names.
            trained = {**client.get_parameters(info.id)[1], **client.get_state(info.id)[1]}
            net.load_state_dict({k: torch.from_numpy(v) for k, v in trained.items()})
            net.eval()
            with torch.no_grad():
                local = net(torch.from_numpy(x_test[:5])).numpy()
            print(f"PyTorch and backflow agree to {np.abs(local - scores).max():.1e}")
        finally:
            client.delete_model(info.id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
